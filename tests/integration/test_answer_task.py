"""An agency's answer to a task, through the service whoever calls it (API, page, CLI), on SQLite and PostgreSQL at
fixed moments: a decline tells the case's coordinator in the same transaction; any other answer tells nobody."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from pathway import services
from pathway.bootstrap import Forlop
from pathway.case.commands import AssignCoordinator, CreateHandover, RecordConsent
from pathway.store.tables import handover_t, notification_t

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)  # Monday 09:00 in Oslo
UNIT = "testenhet"


@pytest.fixture
def sent(core: Forlop) -> tuple[Forlop, str, uuid.UUID]:
    """A case of the unit, its coordinator k2, and a police task for K6 sent on consent."""
    services.add_user(engine=core.engine, username="k1", role="coordinator", unit=UNIT)
    services.add_user(engine=core.engine, username="k2", role="coordinator", unit=UNIT)
    ref = services.open_case(
        uow=core.uow(), pathway_id="krisesenter", unit=UNIT, first_contact_at=T0, actor="k1", keys=core.keys,
        index_key=core.settings.index_key, reference_prefix="TST", at=T0).reference
    at = T0 + timedelta(hours=1)
    services.execute(uow=core.uow(), reference=ref, expected_version=None, command=AssignCoordinator("k2"),
                     actor="k1", at=at)
    services.execute(uow=core.uow(), reference=ref, expected_version=None,
                     command=RecordConsent("police", scope=("name", "contact", "threat_assessment"), given=True),
                     actor="k1", at=at)
    _, task_id = services.execute(uow=core.uow(), reference=ref, expected_version=None, command=CreateHandover("K6"),
                                  actor="k1", at=at)
    return core, ref, task_id


def told(core: Forlop) -> list[tuple[str, str | None]]:
    with core.engine.connect() as conn:
        return sorted(conn.execute(sa.select(notification_t.c.username, notification_t.c.case_reference)
                                   .where(notification_t.c.kind == "handover_declined")).all())


def answer(core: Forlop, ref: str, task_id: uuid.UUID, status: str, note: str | None = None, **kw: object) -> None:
    services.answer_task(uow=core.uow(), reference=ref, task_id=task_id, status=status, note=note, actor="p1",
                         channel="cli", public_url="https://forlop.example", at=T0 + timedelta(hours=2), **kw)


def test_a_decline_through_the_service_tells_the_cases_coordinator(sent: tuple[Forlop, str, uuid.UUID]) -> None:
    core, ref, task_id = sent
    answer(core, ref, task_id, "declined", "ikke vår sak")
    assert told(core) == [("k2", ref)]


def test_an_acceptance_tells_nobody(sent: tuple[Forlop, str, uuid.UUID]) -> None:
    core, ref, task_id = sent
    answer(core, ref, task_id, "accepted")
    assert told(core) == []


def test_the_callers_writer_and_the_notice_are_one_transaction_with_the_decline(
        sent: tuple[Forlop, str, uuid.UUID]) -> None:
    core, ref, task_id = sent

    def fails(conn: sa.Connection) -> None:
        raise RuntimeError("the caller's row cannot be written")

    with pytest.raises(RuntimeError):
        answer(core, ref, task_id, "declined", "nei", also=fails)
    with core.engine.connect() as conn:
        assert conn.execute(sa.select(handover_t.c.status).where(handover_t.c.id == task_id)).scalar_one() == "requested"
    assert told(core) == []
