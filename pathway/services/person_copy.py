"""The person's copy (GDPR art. 15, right of access): everything recorded about the person of a case, read in one
snapshot from the reads the case page and the API use (``case_record``, ``person_of``, ``child_records``,
``access_entries``), for the person's own pathway and each child's. Who may export it is ``policy.may_export_copy``;
the export is logged by its entry point, in the transaction of this read.

The copy holds the texts as recorded (reasons, notes, replies, titles); what a field or an operation is called is
said by the readable document in the reader's language, never here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from pathway.crypto import KeyRing
from pathway.people import ChildRecord, PersonRecord
from pathway.services.people import person_of
from pathway.store.tables import legal_hold_t
from pathway.store.uow import UnitOfWork
from pathway.views.access import LogFilter, access_entries
from pathway.views.cases import CaseRecord, case_record
from pathway.views.children import child_records

ACCESS_LIMIT = 100_000  # the whole access log of a case: a case is read a few hundred times in its life, not more


@dataclass(frozen=True, slots=True)
class CopyStep:
    """A step: a checkpoint (``name`` in bokmål and English) or an added step (``title``), its state and times."""

    code: str
    occurrence: int
    name: dict[str, str]
    title: str | None
    adhoc: bool
    state: str
    owner: str
    created_at: datetime
    due_at: datetime | None
    ended_at: datetime | None
    ended_by: str | None


@dataclass(frozen=True, slots=True)
class CopyEvent:
    """One entry of the timeline: when, who, what (the operation), why, and its payload (notes, titles, a transfer's
    target; a correction of the person record names the ``fields`` it changed)."""

    seq: int
    at: datetime
    actor: str
    channel: str | None
    operation: str
    reason: str | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CopyHandover:
    """A handover task: which agency received what (``scope``), on which basis, its status, the note sent and the
    agency's reply."""

    code: str
    agency: str
    scope: tuple[str, ...]
    basis: str
    status: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str | None
    due_at: datetime | None
    note: str | None
    reply: str | None


@dataclass(frozen=True, slots=True)
class CopyGrant:
    """An emergency (break-glass) grant to the case: who, why, when, and why they could also change it (None:
    read-only)."""

    username: str
    reason: str
    granted_at: datetime
    write_reason: str | None = None


@dataclass(frozen=True, slots=True)
class CopyHold:
    """A legal hold on the case: set and lifted, by whom and when (its reasons are sealed and not in the copy)."""

    set_at: datetime
    set_by: str
    lifted_at: datetime | None
    lifted_by: str | None


@dataclass(frozen=True, slots=True)
class CopyAccess:
    """One row of the access log: who (and in which role) read or changed the case, when, what, with what outcome."""

    at: datetime
    username: str
    role: str
    action: str
    status: int
    break_glass: bool


@dataclass(frozen=True, slots=True)
class CopyCase:
    """One pathway of the person's (the adult's case, or a child's pathway) with all that it recorded."""

    reference: str
    pathway: str
    pathway_version: int
    pathway_title: dict[str, str]
    unit: str
    opened_at: datetime
    closed_at: datetime | None
    outcome: str | None
    phase: str
    phase_title: dict[str, str]
    conditions: tuple[str, ...]
    coordinator: str | None
    steps: tuple[CopyStep, ...]
    events: tuple[CopyEvent, ...]
    handovers: tuple[CopyHandover, ...]
    grants: tuple[CopyGrant, ...]
    holds: tuple[CopyHold, ...]
    access: tuple[CopyAccess, ...]


@dataclass(frozen=True, slots=True)
class CopyChild:
    """A child's pathway of the case, with the child's record (None: none recorded)."""

    child: ChildRecord | None
    case: CopyCase


@dataclass(frozen=True, slots=True)
class PersonCopy:
    """The person's copy: when it was made, the case, the person record and the children's pathways."""

    made_at: datetime
    case: CopyCase
    person: PersonRecord | None
    children: tuple[CopyChild, ...]


def person_copy(uow: UnitOfWork, *, reference: str, keys: KeyRing, now: datetime) -> PersonCopy:
    """The copy of the case ``reference`` and its children's pathways, in the caller's unit of work (enter it with
    ``snapshot``: the read and the export's access-log row are one transaction). ``NotFound`` if there is no case."""
    record = case_record(uow, reference)
    records = child_records(uow.conn, [c.id for c in record.children], keys)
    return PersonCopy(
        made_at=now, case=_copy_case(uow, record), person=person_of(uow.conn, reference, keys),
        children=tuple(CopyChild(records.get(c.id), _copy_case(uow, case_record(uow, c.reference)))
                       for c in record.children))


def _copy_case(uow: UnitOfWork, record: CaseRecord) -> CopyCase:
    case, d = record.case, record.case.definition
    phase = next(p for p in d.phases if p.id == case.phase)
    steps = tuple(CopyStep(
        code=s.code, occurrence=s.occurrence, title=s.title if s.adhoc else None, adhoc=s.adhoc, state=s.state,
        name={} if s.adhoc or s.code not in d.checkpoint else d.checkpoint[s.code].name.model_dump(),
        owner=s.owner, created_at=s.created_at, due_at=s.due_at, ended_at=s.ended_at, ended_by=s.ended_by)
        for s in case.steps)
    events = tuple(CopyEvent(seq=e.seq, at=e.at, actor=e.actor, channel=e.channel, operation=e.operation,
                             reason=e.reason, payload=dict(e.payload)) for e in record.events)
    handovers = tuple(CopyHandover(
        code=t.code, agency=t.agency, scope=tuple(t.scope), basis=t.basis, status=t.status, created_at=t.created_at,
        created_by=t.created_by, updated_at=t.updated_at, updated_by=t.updated_by, due_at=t.due_at, note=t.note,
        reply=t.reply) for t in case.handovers)
    grants = tuple(CopyGrant(g.username, g.reason, g.granted_at, g.write_reason) for g in record.grants)
    holds = tuple(CopyHold(r.set_at, r.set_by, r.lifted_at, r.lifted_by) for r in uow.conn.execute(
        sa.select(legal_hold_t.c.set_at, legal_hold_t.c.set_by, legal_hold_t.c.lifted_at, legal_hold_t.c.lifted_by)
        .where(legal_hold_t.c.case_id == case.id).order_by(legal_hold_t.c.set_at)))
    access = tuple(CopyAccess(at=r["at"], username=r["username"], role=r["role"], action=r["action"],
                              status=r["status"], break_glass=bool(r["break_glass"]))
                   for r in reversed(access_entries(uow.conn, where=LogFilter(case_reference=case.reference),
                                                    limit=ACCESS_LIMIT, keys=uow.keys)))
    return CopyCase(
        reference=case.reference, pathway=d.id, pathway_version=d.version, pathway_title=d.title.model_dump(), unit=case.unit,
        opened_at=case.opened_at, closed_at=case.closed_at, outcome=case.outcome, phase=case.phase,
        phase_title=phase.title.model_dump(), conditions=tuple(sorted(case.conditions)), coordinator=case.coordinator,
        steps=steps, events=events, handovers=handovers, grants=grants, holds=holds, access=access)


def to_json(copy: PersonCopy) -> dict[str, Any]:
    """The copy as JSON values: times and dates in ISO 8601 (UTC), records as their fields."""
    return _plain({"made_at": copy.made_at, "case": asdict(copy.case),
                   "person": copy.person.model_dump(mode="json") if copy.person is not None else None,
                   "children": [{"child": c.child.model_dump(mode="json") if c.child is not None else None,
                                 "case": asdict(c.case)} for c in copy.children]})


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
