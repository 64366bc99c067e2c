"""The timeliness report over completions recorded after the fact, on SQLite and PostgreSQL: a late checkpoint
recorded the next day brings its deviation reason, found by when the work was done (the payload's
``effective_at``), not by when it was recorded (the event's ``at``)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from pathway.bootstrap import Forlop
from pathway.case.commands import CompleteStep
from pathway.metrics import timeliness
from tests.integration.test_metrics import change, open_case, row

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)  # Monday 2 November 2026, 09:00 in Oslo
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
REASON = "Ventet på tolk"


def test_a_late_completion_recorded_the_next_day_brings_its_deviation_reason(core: Forlop) -> None:
    # Five cases (the smallest count a reason is named for): K2 (24 h) done 26 h after first contact, recorded 40 h
    # after, with why it was late.
    for i in range(5):
        opened = T0 + timedelta(hours=i)
        reference = open_case(core, opened)
        change(core, reference, lambda c, done=opened + timedelta(hours=26), now=opened + timedelta(hours=40):
               c.execute(CompleteStep("K2", note=REASON, effective_at=done), actor="k", at=now))
    report = timeliness(engine=core.engine, resolve=core.catalog.resolve, keys=core.keys, period="month", start=date(2026, 11, 1),
                        end=date(2026, 11, 30), unit=None, now=NOW)
    k2 = row(report, "K2")
    assert (k2.completed, k2.within_deadline_share) == (5, 0.0)
    assert (k2.median_hours, k2.p90_hours) == (26.0, 26.0), "counted to when it was done, not recorded"
    assert k2.deviation_reasons == {REASON: 5}
