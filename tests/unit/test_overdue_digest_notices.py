"""The daily digest of overdue steps as notices: who hears it, what it carries, and what it never says."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from notifications.dispatcher import to_message
from notifications.notices import OVERDUE_DIGEST, CheckpointCount, Notice, overdue_digest_notices
from notifications.routing import Candidate

AT = datetime(2026, 11, 26, 6, 0, tzinfo=timezone.utc)  # Thursday 07:00 in Oslo
URL = "https://forlop.example.invalid/"
UNIT = "bergen-sentrum"
K1 = CheckpointCount("K1", {"nb": "Innledende kartlegging og trusselvurdering",
                            "en": "Initial mapping and threat assessment"}, 42)
K2 = CheckpointCount("K2", {"nb": "Sikkerhetsplan og beslutning om botilbud", "en": "Safety plan and shelter decision"},
                     36)
COORDINATOR = Candidate("k1", "coordinator", unit=UNIT, email="k1@example.invalid")
MANAGER = Candidate("m1", "manager", unit=UNIT, email="m1@example.invalid", webhook_url="https://hooks.example.invalid")
ELSEWHERE = Candidate("m9", "manager", unit="voss")


def digest(*candidates: Candidate, lines: tuple[CheckpointCount, ...] = (K1, K2)) -> list[Notice]:
    return overdue_digest_notices(unit=UNIT, checkpoints=lines, candidates=candidates, public_url=URL, at=AT)


def test_the_units_managers_hear_it_by_every_channel_they_gave_and_its_coordinators_do_not() -> None:
    [notice] = digest(COORDINATOR, MANAGER, ELSEWHERE)
    assert (notice.username, notice.channels, notice.kind) == ("m1", ("email", "webhook"), OVERDUE_DIGEST)


def test_a_unit_without_a_manager_tells_its_coordinators_with_a_link_they_may_open() -> None:
    [notice] = digest(COORDINATOR, ELSEWHERE)
    assert (notice.username, notice.link) == ("k1", "https://forlop.example.invalid/cases?deadline=overdue")


def test_it_carries_counts_the_total_and_the_reports_link_and_no_case() -> None:
    [notice] = digest(MANAGER)
    assert (notice.case_reference, notice.step_code, notice.count, notice.link, notice.due_at) == (
        None, None, 78, "https://forlop.example.invalid/reports", AT)
    payload = notice.payload()
    assert payload["checkpoints"] == [{"code": "K1", "names": dict(K1.names), "count": 42},
                                      {"code": "K2", "names": dict(K2.names), "count": 36}]
    assert (payload["count"], payload["case_reference"], payload["step_code"]) == (78, None, None)


def test_the_message_names_each_checkpoint_in_the_recipients_language() -> None:
    payload = digest(MANAGER)[0].payload()
    english = to_message(uuid.uuid4(), "m1", "en", payload)
    bokmaal = to_message(uuid.uuid4(), "m1", None, payload)  # no language given: bokmål
    assert [(c.code, c.name, c.count) for c in english.checkpoints] == [
        ("K1", "Initial mapping and threat assessment", 42), ("K2", "Safety plan and shelter decision", 36)]
    assert [c.name for c in bokmaal.checkpoints] == [
        "Innledende kartlegging og trusselvurdering", "Sikkerhetsplan og beslutning om botilbud"]
    assert english.count == 78 and english.case_reference is None


def test_nothing_to_tell_tells_nobody() -> None:
    assert digest(MANAGER, lines=()) == []
    assert digest(MANAGER, lines=(CheckpointCount("K1", K1.names, 0),)) == []
