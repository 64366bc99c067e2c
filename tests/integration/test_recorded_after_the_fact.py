"""Recorded after the fact, counted when it was done: the timeliness figures use a step's effective end, on SQLite
and PostgreSQL.

Five cases opened on Monday 2 November 2026 at 09:00 in Oslo (K1 due within 24 hours). Each K1 was done that
Monday at 14:00 at a meeting and recorded on Tuesday at 15:00 (30 hours after first contact), given when it was
done. Recorded as done on Tuesday they would all be late; they were on time.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from pathway import services
from pathway.bootstrap import Forlop
from pathway.case import replay
from pathway.case.commands import CompleteStep
from pathway.metrics import timeliness

UTC = timezone.utc
MONDAY = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # 09:00 in Oslo
MONDAY_AFTERNOON = MONDAY + timedelta(hours=5)  # 14:00 in Oslo
TUESDAY_AFTERNOON = MONDAY + timedelta(hours=30)
UNIT = "testenhet"


def open_case(core: Forlop) -> str:
    return services.open_case(
        uow=core.uow(), pathway_id="krisesenter", unit=UNIT, first_contact_at=MONDAY, actor="koordinator",
        keys=core.keys, index_key=core.settings.index_key, reference_prefix="TST", at=MONDAY,
    ).reference


def test_a_k1_done_yesterday_at_14_and_recorded_today_counts_as_on_time(core: Forlop) -> None:
    refs = [open_case(core) for _ in range(5)]
    for ref in refs:
        services.execute(uow=core.uow(), reference=ref, expected_version=None, actor="koordinator",
                         command=CompleteStep("K1", effective_at=MONDAY_AFTERNOON), at=TUESDAY_AFTERNOON)

    report = timeliness(engine=core.engine, resolve=core.catalog.resolve, keys=core.keys, period="month", start=date(2026, 11, 1),
                        end=date(2026, 11, 30), unit=None, now=TUESDAY_AFTERNOON)
    k1 = next(x for x in report.intervals if x.checkpoint == "K1" and x.interval == "K0→K1")
    assert k1.completed == 5
    assert k1.within_deadline_share == 1.0, "done on Monday at 14:00: within 24 hours"
    assert (k1.median_hours, k1.p90_hours) == (5.0, 5.0), "lead time to when it was done, not to when recorded"
    assert k1.deviation_reasons == {}

    case = services.get_case(uow=core.uow(), reference=refs[0])
    k1_step = next(s for s in case.steps if s.code == "K1")
    assert k1_step.ended_at == MONDAY_AFTERNOON
    with core.uow(read_only=True) as uow:
        events = uow.cases.events(case)
    assert events[-1].at == TUESDAY_AFTERNOON, "the event keeps when it was recorded"
    assert events[-1].payload["effective_at"] == MONDAY_AFTERNOON.isoformat()
    with core.uow(read_only=True) as uow:
        sealed = uow.cases.events(case, sealed=True)
    assert replay(sealed, core.catalog.resolve, case.sealer).snapshot() == case.snapshot(), "and replays from the database"
