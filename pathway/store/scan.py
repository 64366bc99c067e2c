"""The reminder scan: one indexed query over open steps whose next rung is due, and the reminders it raises.

Each batch is one transaction: the reminders (unique per step, rung and deadline, enforced by the database)
are written together with the steps' next look-up time. Two scans at once raise each reminder once:
PostgreSQL lets them skip each other's locked rows, and the unique key settles any overlap. After downtime the
first scan raises every rung that was passed, once each.

Routing (``route``) then gives each reminder to its recipients: an inbox row each, and outbox rows for email and
webhooks, in the same transaction that marks the reminder routed. Who the recipients are is decided by
``notifications.routing``; this module only fetches the facts (the steps' owners, and in one query per batch the
open handover tasks of the batch's cases with their basis and the consent as it is now) and the candidates, and
writes the rows. Whether a task still counts is decided when the reminder is routed, not when it was raised: after
a consent is withdrawn or narrowed, the agency hears of nothing more.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from notifications.routing import Candidate, Reminder, route_reminders
from pathway.case import OPEN_HANDOVER, shareable
from pathway.definition import PathwayDefinition
from pathway.reminders import HANDOVER_UNACCEPTED, crossed, rung_times
from pathway.store.engine import WRITE
from pathway.store.fixed import Fixed, any_of
from pathway.store.tables import (
    case_t,
    handover_t,
    notification_t,
    outbox_t,
    reminder_t,
    step_t,
    user_t,
)

Resolver = Callable[..., PathwayDefinition]
Rows = Sequence[Any]  # rows of any shape: Core's, or DueStep


@dataclass
class ScanResult:
    steps: int = 0
    reminders: int = 0
    notifications: int = 0
    outbox: int = 0
    unrouted: int = 0  # reminders nobody could be found for (logged by count, never by case)

    def add(self, other: ScanResult) -> None:
        for name in ("steps", "reminders", "notifications", "outbox", "unrouted"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _batch(query: sa.Select[Any], *order: sa.ColumnElement[Any], lock: bool, name: str) -> sa.Subquery:
    """The first ``:batch`` rows of ``query`` in ``order``, as a subquery of their own: a LIMIT inside a subquery
    keeps either database from flattening it into a join it might drive from the case table, so the batch is read
    from its partial index alone and only its rows are joined. ``lock``: PostgreSQL locks them and skips those
    another scheduler holds."""
    query = query.order_by(*order).limit(sa.bindparam("batch", type_=sa.Integer()))
    return (query.with_for_update(skip_locked=True) if lock else query).subquery(name)


@functools.cache
def due_steps_query(*, lock: bool = False) -> sa.Select[Any]:
    """The scan's question, also used bare by the benchmark: open steps whose next rung has come by ``:now``, at
    most ``:batch`` of them, oldest first; execute it with ``{"now": ..., "batch": ...}``. Built once per process
    (building it cost more than running it when nothing is due). "Nothing due" is one probe of the partial index
    ``ix_step_next_reminder``, however many cases there are. Their cases' facts are a second query by id
    (``_with_cases``): joined in one statement, PostgreSQL hashed every case to join a batch of steps that were due.
    ``lock``: PostgreSQL locks the steps and skips those another scheduler holds."""
    query = (sa.select(*_DUE_STEP).where(step_t.c.ended_at.is_(None), step_t.c.next_reminder_at.is_not(None),
                                         step_t.c.next_reminder_at <= sa.bindparam("now"))
             .order_by(step_t.c.next_reminder_at, step_t.c.id).limit(sa.bindparam("batch", type_=sa.Integer())))
    return query.with_for_update(skip_locked=True) if lock else query


_DUE_STEP = (step_t.c.id, step_t.c.case_id, step_t.c.code, step_t.c.owner, step_t.c.adhoc, step_t.c.due_at)
_CASE_FACTS = (case_t.c.reference, case_t.c.unit, case_t.c.coordinator, case_t.c.pathway_id,
               case_t.c.definition_version)
# The cases of a batch by id, the ids as one parameter (on the DBAPI cursor: through Core, an IN of a thousand ids
# had each id and each row converted one by one).
_CASES_BY_IDS = Fixed(sa.select(case_t.c.id, *_CASE_FACTS).where(any_of(case_t.c.id)))


class DueStep(NamedTuple):
    """A due step with its case's facts: a row of ``due_steps_query`` with the columns of ``_CASE_FACTS``."""

    id: uuid.UUID
    case_id: uuid.UUID
    code: str
    owner: str
    adhoc: bool
    due_at: datetime
    reference: str
    unit: str
    coordinator: str | None
    pathway_id: str
    definition_version: int


# Filled by position: its fields are the two queries' columns, in their order.
assert DueStep._fields == tuple(c.name for c in (*_DUE_STEP, *_CASE_FACTS))


def _with_cases(conn: sa.Connection, steps: Rows) -> list[DueStep]:
    """The batch's steps (rows of ``due_steps_query``) with their cases' facts, read by the cases' primary key."""
    if not steps:
        return []
    ids = list(dict.fromkeys(s[1] for s in steps))
    cases = {r[0]: r[1:] for r in _CASES_BY_IDS.rows(conn, {"ids": ids})}
    return [DueStep(*s, *cases[s[1]]) for s in steps]


class Unrouted(NamedTuple):
    """A reminder not yet routed, with the facts of its step and case: a row of ``unrouted_query``."""

    id: uuid.UUID
    case_id: uuid.UUID
    kind: str
    recipient: str
    due_at: datetime
    code: str
    owner: str
    adhoc: bool
    reference: str
    unit: str
    coordinator: str | None
    pathway_id: str
    definition_version: int


@functools.cache
def unrouted_query(*, lock: bool = False) -> sa.Select[Any]:
    """Route's question, also used bare by the benchmark: at most ``:batch`` reminders not yet routed, oldest
    first, with the facts of their steps and cases; built once per process, like ``due_steps_query``. "Nothing to
    route" is one probe of the partial index ``ix_reminder_unrouted``, however many cases and reminders there are."""
    pending = _batch(
        sa.select(reminder_t.c.id, reminder_t.c.step_id, reminder_t.c.case_id, reminder_t.c.kind,
                  reminder_t.c.recipient, reminder_t.c.due_at, reminder_t.c.raised_at)
        .where(reminder_t.c.routed_at.is_(None)),
        reminder_t.c.raised_at, reminder_t.c.id, lock=lock, name="pending")
    return (  # the columns of Unrouted, in its order
        sa.select(pending.c.id, pending.c.case_id, pending.c.kind, pending.c.recipient, pending.c.due_at,
                  step_t.c.code, step_t.c.owner, step_t.c.adhoc, case_t.c.reference, case_t.c.unit,
                  case_t.c.coordinator, case_t.c.pathway_id, case_t.c.definition_version)
        .join(step_t, step_t.c.id == pending.c.step_id)
        .join(case_t, case_t.c.id == pending.c.case_id)
        .order_by(pending.c.raised_at, pending.c.id)
    )


assert Unrouted._fields == tuple(c.name for c in unrouted_query().selected_columns)  # filled by position

# The scan's and route's questions on the DBAPI cursor (``pathway.store.fixed``), by whether they lock (PostgreSQL):
# asked every few seconds by every scheduler, mostly to find nothing, so Core's per-statement cost was most of an
# empty scan's.
_DUE = {lock: Fixed(due_steps_query(lock=lock)) for lock in (False, True)}
_UNROUTED = {lock: Fixed(unrouted_query(lock=lock)) for lock in (False, True)}


def scan(*, engine: sa.Engine, resolve: Resolver, now: datetime, batch: int = 1000) -> ScanResult:
    """Raise every reminder due by ``now``: one indexed query, one insert of reminders, one update of steps
    per batch. Routing them to people (inbox, email, webhooks) is ``route``'s job."""
    total = ScanResult()
    while True:
        with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            due = _DUE[conn.dialect.name == "postgresql"].rows(conn, {"now": now, "batch": batch})
            rows = _with_cases(conn, due)
            total.reminders += _raise(conn, rows, resolve=resolve, now=now)
        total.steps += len(rows)
        if len(rows) < batch:
            return total


def _raise(conn: sa.Connection, rows: Rows, *, resolve: Resolver, now: datetime) -> int:
    if not rows:
        return 0
    handover_codes = _handover_codes(rows, resolve, conn)
    waiting = _unaccepted_handovers(conn, {r.case_id for r in rows if r.code in handover_codes})
    reminders: list[tuple[Any, ...]] = []
    advances: list[tuple[Any, ...]] = []
    for row in rows:
        definition = resolve(row.pathway_id, row.definition_version, conn=conn)
        due, next_at = crossed(rung_times(definition, row.code, row.due_at, adhoc=row.adhoc), now)
        for rung in due:
            if rung.kind == HANDOVER_UNACCEPTED and (row.case_id, row.code) not in waiting:
                continue
            reminders.append((uuid.uuid5(row.id, f"{rung.index}@{row.due_at.isoformat()}"), row.id, row.case_id,
                              rung.index, rung.kind, rung.to, row.due_at, now))
        advances.append((row.id, row.due_at, next_at))
    if conn.dialect.name == "postgresql":
        return _write_postgresql(conn, reminders, advances)
    return _write_sqlite(conn, reminders, advances)


_REMINDER_COLS = ("id", "step_id", "case_id", "rung", "kind", "recipient", "due_at", "raised_at")


def _write_postgresql(conn: sa.Connection, reminders: list[tuple[Any, ...]], advances: list[tuple[Any, ...]]) -> int:
    # Arrays in one statement each: no per-row round trips and no query text that grows with the batch.
    # The deadline guard keeps a step whose deadline moved meanwhile (resume) at its freshly computed rung.
    ids, dues, nexts = (list(col) for col in zip(*advances, strict=True))
    conn.exec_driver_sql(
        "UPDATE step SET next_reminder_at = u.nxt FROM unnest(%(ids)s::uuid[], %(dues)s::timestamptz[], "
        "%(nexts)s::timestamptz[]) AS u(id, due, nxt) WHERE step.id = u.id AND step.due_at = u.due",
        {"ids": ids, "dues": dues, "nexts": nexts})
    if not reminders:
        return 0
    cols = dict(zip(_REMINDER_COLS, (list(col) for col in zip(*reminders, strict=True)), strict=True))
    raised = conn.exec_driver_sql(
        "INSERT INTO reminder (id, step_id, case_id, rung, kind, recipient, due_at, raised_at) "
        "SELECT * FROM unnest(%(id)s::uuid[], %(step_id)s::uuid[], %(case_id)s::uuid[], %(rung)s::int[], "
        "%(kind)s::varchar[], %(recipient)s::varchar[], %(due_at)s::timestamptz[], %(raised_at)s::timestamptz[]) "
        "ON CONFLICT (step_id, rung, due_at) DO NOTHING RETURNING id", cols)
    return len(raised.fetchall())


def _write_sqlite(conn: sa.Connection, reminders: list[tuple[Any, ...]], advances: list[tuple[Any, ...]]) -> int:
    _ADVANCE_SQLITE.run(conn, [{"b_id": i, "b_due": d, "b_next": n} for i, d, n in advances])
    if not reminders:
        return 0
    return _RAISE_SQLITE.run(conn, [{f"r_{c}": v for c, v in zip(_REMINDER_COLS, r, strict=True)} for r in reminders])


# SQLite's two writes of a batch, executemany'd on the DBAPI cursor (``pathway.store.fixed``): through Core, each of a
# thousand rows had its parameters processed one by one. The deadline guard as in _write_postgresql.
_ADVANCE_SQLITE = Fixed(
    sa.update(step_t).where(step_t.c.id == sa.bindparam("b_id"), step_t.c.due_at == sa.bindparam("b_due"))
    .values(next_reminder_at=sa.bindparam("b_next")))
_RAISE_SQLITE = Fixed(
    sqlite.insert(reminder_t).values({c: sa.bindparam(f"r_{c}") for c in _REMINDER_COLS})
    .on_conflict_do_nothing(index_elements=["step_id", "rung", "due_at"]))


def _handover_codes(rows: Rows, resolve: Resolver, conn: sa.Connection) -> set[str]:
    codes = set()
    for key in {(r.pathway_id, r.definition_version) for r in rows}:
        codes |= {c.code for c in resolve(*key, conn=conn).checkpoints if c.handover is not None}
    return codes


# -- routing ----------------------------------------------------------------------------------------------


def route(*, engine: sa.Engine, resolve: Resolver, public_url: str, now: datetime, batch: int = 1000) -> ScanResult:
    """Route raised reminders to their recipients: an inbox row each, and outbox rows for email and webhooks,
    written in the same transaction as the mark that the reminder was routed (so: exactly once). ``resolve`` gives
    the cases' definitions (the steps' owners)."""
    total = ScanResult()
    while True:
        with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            pending = _UNROUTED[conn.dialect.name == "postgresql"].rows(conn, {"batch": batch})
            rows = [Unrouted(*r) for r in pending]
            total.add(_fan_out(conn, rows, resolve=resolve, public_url=public_url, now=now))
        if len(rows) < batch:
            return total


def _reminders(conn: sa.Connection, rows: Rows, resolve: Resolver) -> list[Reminder]:
    """The facts routing decides on: each step's owners (all of a checkpoint's; an ad-hoc step's one), which names
    are agencies, and which agencies hold a task for the step that they may still act on."""
    holders = _task_holders(conn, {r.case_id for r in rows if not r.adhoc})
    agencies: dict[tuple[str, int], frozenset[str]] = {}
    reminders = []
    for r in rows:
        definition = resolve(r.pathway_id, r.definition_version, conn=conn)
        key = definition.key
        if key not in agencies:
            agencies[key] = frozenset(definition.agencies)
        checkpoint = None if r.adhoc else definition.checkpoint.get(r.code)
        reminders.append(Reminder(
            id=r.id, kind=r.kind, to=r.recipient, due_at=r.due_at, step_code=r.code,
            owners=checkpoint.owners if checkpoint is not None else (r.owner,), case_reference=r.reference,
            unit=r.unit, coordinator=r.coordinator, agencies=agencies[key],
            holders=frozenset() if r.adhoc else holders.get((r.case_id, r.code), frozenset())))
    return reminders


def _task_holders(conn: sa.Connection, case_ids: set[uuid.UUID]) -> dict[tuple[uuid.UUID, str], frozenset[str]]:
    """For each (case, checkpoint) of ``case_ids``, the agencies that hold an open handover task for it whose basis
    allows it now: a legal basis, or a consent that still covers the task's whole scope. One query per batch."""
    if not case_ids:
        return {}
    rows = conn.execute(
        sa.select(handover_t.c.case_id, handover_t.c.code, handover_t.c.agency, handover_t.c.scope,
                  handover_t.c.basis, case_t.c.consents)
        .join(case_t, case_t.c.id == handover_t.c.case_id)
        .where(handover_t.c.case_id.in_(case_ids), handover_t.c.status.in_(OPEN_HANDOVER)))
    held: dict[tuple[uuid.UUID, str], set[str]] = {}
    for r in rows:
        consent = r.consents.get(r.agency)
        consent_scope = consent["scope"] if consent and consent["given"] else None
        if r.basis != "consent" or len(shareable(r.scope, r.basis, consent_scope)) == len(r.scope):
            held.setdefault((r.case_id, r.code), set()).add(r.agency)
    return {key: frozenset(names) for key, names in held.items()}


def _fan_out(conn: sa.Connection, rows: Rows, *, resolve: Resolver, public_url: str, now: datetime) -> ScanResult:
    result = ScanResult()
    if not rows:
        return result
    reminders = _reminders(conn, rows, resolve)
    notifications, outbox = [], []
    for found in route_reminders(reminders, _candidates(conn, reminders), public_url=public_url):
        if not found.recipients:
            result.unrouted += 1
            continue
        payload, rid = found.payload(), found.reminder_id
        for user in found.recipients:
            notifications.append({"id": uuid.uuid5(rid, user.username), "reminder_id": rid,
                                  "username": user.username, "kind": found.kind,
                                  "case_reference": found.case_reference, "step_code": found.step_code,
                                  "unit": found.unit, "due_at": found.due_at, "link": found.link, "created_at": now,
                                  "read_at": None})
            for channel in user.channels:
                outbox.append({"id": uuid.uuid5(rid, f"{user.username}/{channel}"), "reminder_id": rid,
                               "username": user.username, "channel": channel, "payload": payload,
                               "status": "pending", "attempts": 0, "next_attempt_at": now,
                               "locked_until": None, "last_error": None, "created_at": now, "sent_at": None})
    if notifications:
        conn.execute(sa.insert(notification_t), notifications)
    if outbox:
        conn.execute(sa.insert(outbox_t), outbox)
    conn.execute(sa.update(reminder_t).where(reminder_t.c.id.in_([r.id for r in rows])).values(routed_at=now))
    result.notifications, result.outbox = len(notifications), len(outbox)
    return result


def _unaccepted_handovers(conn: sa.Connection, case_ids: set[uuid.UUID]) -> set[tuple[uuid.UUID, str]]:
    rows = conn.execute(sa.select(handover_t.c.case_id, handover_t.c.code)
                        .where(handover_t.c.case_id.in_(case_ids), handover_t.c.status == "requested"))
    return {(r.case_id, r.code) for r in rows}


def _candidates(conn: sa.Connection, reminders: list[Reminder]) -> list[Candidate]:
    """Everyone who could receive a batch of reminders, in one query: the units' coordinators and managers, the
    partners of the agencies that hold a task for a step of the batch, and the cases' coordinators by name (active
    users only)."""
    units = {r.unit for r in reminders}
    names = {r.coordinator for r in reminders if r.coordinator}
    holders = {agency for r in reminders for agency in r.holders}
    users = conn.execute(
        sa.select(user_t.c.username, user_t.c.role, user_t.c.unit, user_t.c.agency, user_t.c.email,
                  user_t.c.webhook_url).where(user_t.c.active.is_(True), sa.or_(
            sa.and_(user_t.c.role.in_(["coordinator", "manager"]), user_t.c.unit.in_(units)),
            sa.and_(user_t.c.role == "partner", user_t.c.agency.in_(holders)),
            user_t.c.username.in_(names),
        )).order_by(user_t.c.username))
    return [Candidate(username=u.username, role=u.role, unit=u.unit, agency=u.agency, email=u.email,
                      webhook_url=u.webhook_url) for u in users]
