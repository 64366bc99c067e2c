"""The loop closes, in the store, on SQLite and PostgreSQL, at fixed moments: a decline tells the case's coordinator
in its own transaction (the writer that the partner's decline runs, whichever way it comes), and a task nobody
accepted by its deadline tells the case's coordinator through the reminder scan (the ladder's handover rung)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from pathway import services
from pathway.bootstrap import Forlop
from pathway.case import Case
from pathway.case.commands import AssignCoordinator, CreateHandover, RecordConsent, UpdateHandover
from pathway.scheduler import run_scan
from pathway.store.inbox import declined_writer
from pathway.store.tables import handover_t, notification_t, outbox_t

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)  # Monday 09:00 in Oslo
UNIT = "testenhet"
LINK = "https://forlop.example"
AGENCY = re.compile(r"politi|police|barnevern|child welfare|\bnav\b|helse|health|kriminalomsorg|correctional|bolig"
                    r"|housing", re.IGNORECASE)  # what would name an agency, in either language


@pytest.fixture
def staffed(core: Forlop) -> Forlop:
    add = lambda name, role, **kw: services.add_user(engine=core.engine, username=name, role=role, **kw)  # noqa: E731
    add("k1", "coordinator", unit=UNIT, email="k1@example.invalid")
    add("k2", "coordinator", unit=UNIT, webhook_url="https://hooks.example.invalid/k2")
    add("k9", "coordinator", unit="annen-enhet", email="k9@example.invalid")
    add("m1", "manager", unit=UNIT, email="m1@example.invalid")
    add("p1", "partner", agency="police", email="p1@example.invalid")
    return core


def open_case(core: Forlop) -> str:
    return services.open_case(
        uow=core.uow(), pathway_id="krisesenter", unit=UNIT, first_contact_at=T0, actor="k1", keys=core.keys,
        index_key=core.settings.index_key, reference_prefix="TST", at=T0).reference


def change(core: Forlop, ref: str, fn: Callable[[Case], Any], **kw: Any) -> Any:
    return services.change_case(uow=core.uow(), reference=ref, expected_version=None, change=fn, **kw)[1]


def police_task(core: Forlop, ref: str) -> uuid.UUID:
    at = T0 + timedelta(hours=1)
    change(core, ref, lambda c: c.execute(RecordConsent("police", scope=("name", "contact", "threat_assessment"),
                                                        given=True), actor="k1", at=at))
    task: uuid.UUID = change(core, ref, lambda c: c.execute(CreateHandover("K6"), actor="k1", at=at))
    return task


def told(core: Forlop, kind: str) -> list[tuple[str, str | None, str | None]]:
    with core.engine.connect() as conn:
        return sorted(conn.execute(sa.select(notification_t.c.username, notification_t.c.case_reference,
                                             notification_t.c.step_code).where(notification_t.c.kind == kind)).all())


def decline(core: Forlop, ref: str, task_id: uuid.UUID, at: datetime) -> None:
    change(core, ref, lambda c: c.execute(UpdateHandover(task_id, "declined", note="ikke vår sak"), actor="p1", at=at),
           also=declined_writer(task_id, public_url=LINK, at=at))


def test_a_decline_tells_the_cases_coordinator_alone_with_an_outbox_row_per_address(staffed: Forlop) -> None:
    ref = open_case(staffed)
    change(staffed, ref, lambda c: c.execute(AssignCoordinator("k2"), actor="k1", at=T0))
    task_id = police_task(staffed, ref)
    decline(staffed, ref, task_id, T0 + timedelta(hours=2))
    assert told(staffed, "handover_declined") == [("k2", ref, "K6")]
    with staffed.engine.connect() as conn:
        [row] = conn.execute(sa.select(outbox_t)).all()
        due = conn.execute(sa.select(handover_t.c.due_at).where(handover_t.c.id == task_id)).scalar_one()
    assert (row.username, row.channel, row.status) == ("k2", "webhook", "pending")
    assert row.payload["link"] == f"{LINK}/cases/{ref}" and "agency" not in row.payload
    with staffed.engine.connect() as conn:
        [inbox_row] = conn.execute(sa.select(notification_t).where(notification_t.c.kind == "handover_declined")).all()
    # Email is no safe channel: the agency's name alone says that the police are involved
    assert AGENCY.search(repr(row.payload)) is None and AGENCY.search(repr(tuple(inbox_row))) is None
    assert datetime.fromisoformat(row.payload["due_at"]) == (due if due.tzinfo else due.replace(tzinfo=timezone.utc))
    assert "ikke vår sak" not in repr(row.payload)


def test_a_decline_of_a_case_without_a_coordinator_tells_every_coordinator_of_its_unit(staffed: Forlop) -> None:
    ref = open_case(staffed)
    decline(staffed, ref, police_task(staffed, ref), T0 + timedelta(hours=2))
    assert told(staffed, "handover_declined") == [("k1", ref, "K6"), ("k2", ref, "K6")]


def test_the_writer_tells_nothing_of_a_task_that_was_not_declined(staffed: Forlop) -> None:
    ref = open_case(staffed)
    task_id = police_task(staffed, ref)
    change(staffed, ref, lambda c: c.execute(UpdateHandover(task_id, "accepted"), actor="p1", at=T0 + timedelta(hours=2)),
           also=declined_writer(task_id, public_url=LINK))
    assert told(staffed, "handover_declined") == []


def test_a_decline_that_fails_tells_nobody(staffed: Forlop) -> None:
    ref = open_case(staffed)
    task_id = police_task(staffed, ref)

    def refused(conn: sa.Connection) -> None:
        declined_writer(task_id, public_url=LINK)(conn)
        raise RuntimeError("the transaction fails after the notices were written")

    with pytest.raises(RuntimeError):
        change(staffed, ref, lambda c: c.execute(UpdateHandover(task_id, "declined", note="nei"), actor="p1",
                                                 at=T0 + timedelta(hours=2)), also=refused)
    assert told(staffed, "handover_declined") == []


def test_a_task_not_accepted_by_its_deadline_tells_the_cases_coordinator(staffed: Forlop) -> None:
    waiting, accepted = open_case(staffed), open_case(staffed)
    for ref in (waiting, accepted):
        change(staffed, ref, lambda c: c.execute(AssignCoordinator("k2"), actor="k1", at=T0))
    police_task(staffed, waiting)
    task_id = police_task(staffed, accepted)
    change(staffed, accepted, lambda c: c.execute(UpdateHandover(task_id, "accepted"), actor="p1",
                                                  at=T0 + timedelta(hours=3)))
    with staffed.engine.connect() as conn:
        due = conn.execute(sa.select(sa.func.min(handover_t.c.due_at))).scalar_one()
    due = due if isinstance(due, datetime) else datetime.fromisoformat(due)
    due = due if due.tzinfo else due.replace(tzinfo=timezone.utc)
    assert due == datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)  # one working day after consent

    run_scan(staffed, now=due - timedelta(minutes=1))
    assert told(staffed, "handover_unaccepted") == []
    run_scan(staffed, now=due + timedelta(minutes=1))
    # The case's coordinator, once: not the unit's other coordinator, not the police, not the case accepted in time
    assert told(staffed, "handover_unaccepted") == [("k2", waiting, "K6")]
    run_scan(staffed, now=due + timedelta(days=1))
    assert told(staffed, "handover_unaccepted") == [("k2", waiting, "K6")]
    with staffed.engine.connect() as conn:
        [row] = conn.execute(sa.select(outbox_t).where(outbox_t.c.payload["kind"].as_string() == "handover_unaccepted"))
    assert (row.username, row.channel) == ("k2", "webhook")
