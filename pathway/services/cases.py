"""Cases as use cases: open one at first contact, run a command on a stored one, read one."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pathway.calendar import OSLO
from pathway.case import Case, Command, utc
from pathway.case.commands import AddStep, AssignCoordinator, NotePersonChange
from pathway.crypto import KeyRing, blind_index
from pathway.definition import PathwayDefinition
from pathway.errors import ConcurrencyConflict, DomainError, InvalidArgument
from pathway.people import PersonRecord, changed_fields
from pathway.services.people import recent_contact, write_person
from pathway.store.fixed import Fixed
from pathway.store.staff import coordinators_of
from pathway.store.tables import case_t, counter_t
from pathway.store.uow import UnitOfWork
from pathway.views.children import open_children

T = TypeVar("T")
REPEAT_CONTACT_WINDOW = timedelta(days=365)


def now() -> datetime:
    return datetime.now(timezone.utc)


def newest_and_reference(uow: UnitOfWork, pathway_id: str, *, prefix: str, at: datetime) -> tuple[PathwayDefinition, str]:
    """What a new case opens on: the newest version of its pathway and the next pseudonymous reference, e.g.
    BGO-2026-0042 (a counter, never derived from the person; the year is Oslo's at ``at``, so a case opened at 00:30
    on New Year's Day is of the new year while UTC is still in the old), asked together (one round trip on
    PostgreSQL). The number is taken in the caller's transaction: a case that is not opened after all leaves no gap."""
    year = at.astimezone(OSLO).year
    definition, ((number,),) = uow.catalog.latest_with(
        pathway_id, (_NEXT_NUMBER[uow.conn.dialect.name], {"prefix": prefix, "year": year}), conn=uow.conn)
    return definition, f"{prefix}-{year}-{number:04d}"


# Built once per dialect (every open takes a number), run on the DBAPI cursor.
_NEXT_NUMBER = {
    dialect.__name__.rsplit(".", 1)[-1]: Fixed(
        dialect.insert(counter_t).values(prefix=sa.bindparam("prefix"), year=sa.bindparam("year"), last=1)
        .on_conflict_do_update(index_elements=[counter_t.c.prefix, counter_t.c.year],
                               set_={"last": counter_t.c.last + 1})
        .returning(counter_t.c.last))
    for dialect in (postgresql, sqlite)
}


def open_case(
    *,
    uow: UnitOfWork,
    pathway_id: str,
    unit: str,
    first_contact_at: datetime,
    actor: str,
    keys: KeyRing,
    index_key: str,
    reference_prefix: str,
    person: PersonRecord | None = None,
    conditions: Iterable[str] = (),
    reason: str | None = None,
    at: datetime | None = None,
    also: Callable[[sa.Connection, Case], None] | None = None,
    channel: str | None = None,
    contact_channel: str | None = None,
) -> Case:
    """Open a case at first contact on the newest version of a pathway, with its (encrypted) person record.
    ``contact_channel``: how first contact came (``pathway.case.aggregate.CONTACT_CHANNELS``), if recorded."""
    at = at or now()
    with uow:
        definition, reference = newest_and_reference(uow, pathway_id, prefix=reference_prefix,
                                                     at=utc(first_contact_at, "first_contact_at"))
        conditions = set(conditions)
        if person is not None and person.has_children:
            conditions.add("children")
        case_id = uuid.uuid4()
        case = Case.open(
            definition, case_id=case_id, reference=reference, unit=unit, first_contact_at=first_contact_at,
            actor=actor, at=at, conditions=sorted(conditions & set(definition.conditions)), reason=reason,
            channel=channel, contact_channel=contact_channel, sealer=uow.cases.new_key(),
        )
        uow.cases.add(case)
        if person is not None:
            repeat = recent_contact(uow.conn, blind_index(index_key, person.name), since=at - REPEAT_CONTACT_WINDOW)
            write_person(uow.conn, case, person, keys=keys, index_key=index_key, at=at, insert=True)
            case.execute(NotePersonChange(tuple(changed_fields(None, person))), actor=actor, at=at, channel=channel)
            uow.cases.save(case)
            if repeat:
                uow.conn.execute(sa.update(case_t).where(case_t.c.id == case.id).values(repeat_contact=True))
        if also is not None:  # more in the same transaction: the access-log row of the write
            also(uow.conn, case)
        uow.commit()
    return case


def change_case(
    *, uow: UnitOfWork, reference: str, expected_version: int | None, change: Callable[[Case], T],
    also: Callable[[sa.Connection], None] | None = None,
) -> tuple[Case, T]:
    """Load a case, change it and save it with its events, in one transaction; a stale version raises a conflict.

    ``also`` writes more in the same transaction (the access-log row of the write), so both or neither persist."""
    with uow:
        case = uow.cases.get(reference, lock=True)
        if expected_version is not None and expected_version != case.version:
            raise ConcurrencyConflict(reference, expected_version, case.version)
        result = change(case)
        uow.cases.save(case, expected_version=expected_version)
        if also is not None:
            also(uow.conn)
        uow.commit()
    return case, result


def execute(
    *, uow: UnitOfWork, reference: str, expected_version: int | None, command: Command, actor: str,
    at: datetime | None = None, also: Callable[[sa.Connection], None] | None = None, channel: str | None = None,
    then: Sequence[Command] = (), children: bool = False,
) -> tuple[Case, Any]:
    """The one handler of a command on a stored case, for the API, the pages, the CLI and the demo alike.
    Returns the case and what the command yields (an ad-hoc step's code, a handover task's id). ``channel`` (api,
    web, cli, scheduler) is recorded on the event. ``then``: commands run after it in the same transaction (a
    consent given and the handover it allows), each its own event: all are stored, or none (what the last yields
    is returned). ``children``: run the same commands on each open child's pathway of the case too (pausing a
    family's clocks at once), in the same transaction; a child's pathway that refuses them (already paused, or a
    change of its own recorded after the time given) is left as it is. Without it, a child's clock never follows
    the adult's."""
    when = at or now()

    def change(case: Case) -> Any:
        result = None
        for each in (command, *then):
            admissible(uow.conn, case, each)
            result = case.execute(each, actor=actor, at=when, channel=channel)
        if children:
            for child_id, _ in open_children(uow.conn, case.reference):
                child = uow.cases.get_by_id(child_id, lock=True)
                if child.refusal(command, *then, at=when) is not None:
                    continue
                try:
                    for each in (command, *then):
                        child.execute(each, actor=actor, at=when, channel=channel)
                except DomainError:
                    continue  # not saved: this child's pathway stays as it was
                uow.cases.save(child)
        return result

    return change_case(uow=uow, reference=reference, expected_version=expected_version, also=also, change=change)


def admissible(conn: sa.Connection, case: Case, command: Command) -> None:
    """What a person may ask of a case now, beyond what the case itself checks: who a command names must be able to
    carry the work. Replay does not ask this (it reproduces what was recorded, under the rules of its day).

    - The coordinator is an active coordinator user of the case's unit: naming anyone else (a police contact, a
      user of another unit, a name typed freely) would send them the case's escalations without access to it.
    - An ad-hoc step is owned by a crisis-centre role of the pathway: an agency gets work only through a handover
      task, which the consent gate governs (``CreateHandover``).
    """
    if isinstance(command, AssignCoordinator):
        if command.coordinator not in coordinators_of(conn, case.unit):
            # The value is not repeated: a name typed here may be the person's, and errors never echo one.
            raise InvalidArgument("coordinator", "not an active coordinator of the case's unit (choose one of its "
                                                 "coordinators)")
    elif isinstance(command, AddStep) and command.owner not in case.definition.roles:
        raise InvalidArgument("owner", "an ad-hoc step is owned by one of {roles}; an agency gets work through a "
                                       "handover task", roles=list(case.definition.roles))


def get_case(*, uow: UnitOfWork, reference: str) -> Case:
    with uow:
        return uow.cases.get(reference)
