"""A pause's rule for giving its time back to deadlines in working days, through the store on SQLite and
PostgreSQL: the pause and its resume are two transactions, so the case row keeps the rule the pause recorded until
the clock runs again (``paused_time``; NULL for a pause recorded before the rule was, which keeps calendar time)."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from pathway.bootstrap import Forlop
from pathway.calendar import OSLO
from pathway.case import Case, replay
from pathway.case import commands as do
from pathway.case.events import Event
from pathway.store.tables import case_t
from tests.integration.test_store import change, open_case, stored

# K3 (coordinator assigned) is due 2 working days after first contact: from Thursday 8 April 2027 10:00, Monday 12
# April 10:00. Paused Friday 10:00 to Monday 10:00: 24 working hours (Friday 14, Monday 10) over 72 calendar hours.
THURSDAY = datetime(2027, 4, 8, 10, tzinfo=OSLO)
PAUSED, RESUMED = datetime(2027, 4, 9, 10, tzinfo=OSLO), datetime(2027, 4, 12, 10, tzinfo=OSLO)


def k3_due(case: Case) -> datetime | None:
    return max((s for s in case.steps if s.code == "K3"), key=lambda s: s.occurrence).due_at


def row_rule(core: Forlop, reference: str) -> str | None:
    with core.engine.connect() as conn:
        return conn.execute(sa.select(case_t.c.paused_time).where(case_t.c.reference == reference)).scalar()


def rebuilt(core: Forlop, case: Case) -> Case:
    with core.uow() as uow:
        return replay(uow.cases.events(case, sealed=True), core.catalog.resolve, case.sealer)


def test_a_pause_resumed_in_a_later_transaction_gives_back_its_working_time(core: Forlop) -> None:
    reference = open_case(core, at=THURSDAY).reference
    assert k3_due(stored(core, reference)) == datetime(2027, 4, 12, 10, tzinfo=OSLO)
    change(core, reference, lambda c: c.execute(do.Pause(reason="på sykehus"), actor="k", at=PAUSED))
    assert row_rule(core, reference) == "working"
    assert stored(core, reference).paused_time == "working"
    case = change(core, reference, lambda c: c.execute(do.Resume(), actor="k", at=RESUMED))
    assert k3_due(case) == datetime(2027, 4, 13, 10, tzinfo=OSLO), "Monday 10:00 + 24 working hours"
    assert k3_due(stored(core, reference)) == datetime(2027, 4, 13, 10, tzinfo=OSLO)
    assert row_rule(core, reference) is None, "the clock runs: no pause, no rule"
    assert rebuilt(core, case).digest() == stored(core, reference).digest()


def test_a_case_paused_before_the_rule_was_recorded_resumes_in_calendar_time(core: Forlop) -> None:
    # Its row has no rule (NULL, as the migration leaves every row) and its pause event none either.
    older = do.Pause.from_event(Event(case_id=uuid.UUID(int=0), seq=2, at=PAUSED, actor="k", operation="pause",
                                      reason="på sykehus", payload={}, state_before={}, state_after={}, prev_hash="",
                                      hash=""))
    reference = open_case(core, at=THURSDAY).reference
    change(core, reference, lambda c: c.execute(older, actor="k", at=PAUSED))
    assert row_rule(core, reference) is None and stored(core, reference).paused_since is not None
    case = change(core, reference, lambda c: c.execute(do.Resume(), actor="k", at=RESUMED))
    assert k3_due(case) == datetime(2027, 4, 15, 10, tzinfo=OSLO), "Monday 10:00 + 72 hours, as it was"
    assert rebuilt(core, case).digest() == stored(core, reference).digest()
