"""``forlop case ... --at``: the CLI records a checkpoint, a pause and a resume after the fact, as the API and the
pages do (the real console script on a SQLite file; times relative to when the test runs, compared as given)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.test_cli import (  # noqa: F401 - the fixtures are used by name
    ACTOR, Database, database, fresh_database, pytestmark, upgraded_template,
)


def ago(hours: float) -> datetime:
    return (datetime.now(timezone.utc) - timedelta(hours=hours)).replace(microsecond=0)


def test_complete_pause_and_resume_take_the_time_they_happened(database: Database) -> None:
    reference = database.open_case("--first-contact", ago(4).isoformat(), "--reason", "registrert etter møtet")
    done, paused, resumed = ago(3), ago(2), ago(1)
    database.ok("case", "complete", reference, "K1", "--at", done.isoformat(), *ACTOR)
    database.ok("case", "pause", reference, "--reason", "på sykehus", "--at", paused.isoformat(), *ACTOR)
    snapshot = database.snapshot(reference)
    assert datetime.fromisoformat(snapshot["paused_since"]) == paused
    k1 = next(s for s in snapshot["steps"] if s[1] == "K1")
    assert datetime.fromisoformat(k1[11]) == done  # ended_at
    database.ok("case", "resume", reference, "--at", resumed.isoformat(), *ACTOR)
    assert database.snapshot(reference)["paused_since"] is None
    recorded = database.query("SELECT payload FROM case_event WHERE operation = 'resume'")
    assert len(recorded) == 1 and "effective_at" in recorded[0][0]


@pytest.mark.dated  # the calendar is the CLI's own here
def test_a_time_in_the_future_is_refused_naming_the_option_s_field(database: Database) -> None:
    reference = database.open_case()
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    result = database.run("case", "complete", reference, "K1", "--at", later.isoformat(), *ACTOR)
    assert result.code != 0 and "effective_at" in result.output, result
    result = database.run("case", "complete", reference, "K1", "--at", "not a time", *ACTOR)
    assert result.code == 2 and "ISO 8601" in result.output, result
