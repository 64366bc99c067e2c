"""Lead times of a checkpoint in working days whose case was paused, through the report on SQLite and PostgreSQL:
the deadline moves by the paused working time (over the weekend), and the lead time leaves out the time the clock
stood still (a day), not how far the deadline moved (three days)."""

from __future__ import annotations

from datetime import date, datetime, timezone

from pathway.bootstrap import Forlop
from pathway.calendar import OSLO
from pathway.case.commands import AssignCoordinator, Pause, Resume
from pathway.metrics import timeliness
from tests.integration.test_metrics import change, open_case, row

# K3 (coordinator assigned, 2 working days): first contact Wednesday 7 April 2027 10:00, due Friday 9 April 10:00.
# Paused Wednesday 14:00 to Thursday 14:00 (24 working hours), it is due Monday 12 April 10:00; the coordinator is
# assigned Monday 09:00, 119 hours after first contact, of which 95 count (the 24 hours paused left out, not the 72
# the deadline moved by).
OPENED = datetime(2027, 4, 7, 10, tzinfo=OSLO)
PAUSED, RESUMED = datetime(2027, 4, 7, 14, tzinfo=OSLO), datetime(2027, 4, 8, 14, tzinfo=OSLO)
ASSIGNED = datetime(2027, 4, 12, 9, tzinfo=OSLO)
NOW = datetime(2027, 5, 1, 12, tzinfo=timezone.utc)


def test_a_pause_on_working_days_leaves_out_the_time_the_clock_stood_still(core: Forlop) -> None:
    for _ in range(5):  # the smallest count figures are shown for
        reference = open_case(core, OPENED)
        change(core, reference, lambda c: c.execute(Pause(reason="på sykehus"), actor="k", at=PAUSED))
        case = change(core, reference, lambda c: c.execute(Resume(), actor="k", at=RESUMED))
        k3 = max((s for s in case.steps if s.code == "K3"), key=lambda s: s.occurrence)
        assert k3.due_at == datetime(2027, 4, 12, 10, tzinfo=OSLO)
        change(core, reference, lambda c: c.execute(AssignCoordinator("koordinator"), actor="leder", at=ASSIGNED))
    report = timeliness(engine=core.engine, resolve=core.catalog.resolve, keys=core.keys, period="month", start=date(2027, 4, 1),
                        end=date(2027, 4, 30), unit=None, now=NOW)
    figures = row(report, "K3", period="2027-04")
    assert (figures.completed, figures.within_deadline_share) == (5, 1.0)
    assert (figures.median_hours, figures.p90_hours) == (95.0, 95.0)
