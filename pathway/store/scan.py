"""The reminder scan: one indexed query over open steps whose next rung is due, and the reminders it raises.

Each batch is one transaction: the reminders (unique per step, rung and deadline, enforced by the database),
the recipients' inbox rows and the outbox rows for email and webhooks are written together with the steps'
next look-up time. Two scans at once raise each reminder once: PostgreSQL lets them skip each other's locked
rows, and the unique key settles any overlap. After downtime the first scan raises every rung that was passed,
once each.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pathway.definition import PathwayDefinition
from pathway.reminders import HANDOVER_UNACCEPTED, RungDue, crossed, rung_times
from pathway.store.engine import WRITE
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


def due_steps_query(now: datetime, limit: int) -> sa.Select[Any]:
    """The scan's question, also used bare by the benchmark: open steps whose next rung has come."""
    return (
        sa.select(step_t.c.id, step_t.c.case_id, step_t.c.code, step_t.c.owner, step_t.c.adhoc, step_t.c.due_at,
                  case_t.c.reference, case_t.c.unit, case_t.c.coordinator, case_t.c.pathway_id,
                  case_t.c.definition_version)
        .join(case_t, case_t.c.id == step_t.c.case_id)
        .where(step_t.c.ended_at.is_(None), step_t.c.next_reminder_at.is_not(None),
               step_t.c.next_reminder_at <= now)
        .order_by(step_t.c.next_reminder_at, step_t.c.id)
        .limit(limit)
    )


def scan(*, engine: sa.Engine, resolve: Resolver, public_url: str, now: datetime, batch: int = 1000) -> ScanResult:
    """Raise every reminder due by ``now``; returns what was written."""
    total = ScanResult()
    while True:
        with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            query = due_steps_query(now, batch)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(of=step_t, skip_locked=True)
            rows = conn.execute(query).all()
            total.add(_raise(conn, rows, resolve=resolve, public_url=public_url.rstrip("/"), now=now))
        total.steps += len(rows)
        if len(rows) < batch:
            return total


def _raise(conn: sa.Connection, rows: list[sa.Row[Any]], *, resolve: Resolver, public_url: str,
           now: datetime) -> ScanResult:
    result = ScanResult()
    if not rows:
        return result
    waiting = _unaccepted_handovers(conn, {r.case_id for r in rows})
    wanted: list[tuple[sa.Row[Any], RungDue, uuid.UUID]] = []
    advances = []
    for row in rows:
        definition = resolve(row.pathway_id, row.definition_version, conn=conn)
        due, next_at = crossed(rung_times(definition, row.code, row.due_at, adhoc=row.adhoc), now)
        for rung in due:
            if rung.kind == HANDOVER_UNACCEPTED and (row.case_id, row.code) not in waiting:
                continue
            wanted.append((row, rung, uuid.uuid5(row.id, f"{rung.index}@{row.due_at.isoformat()}")))
        advances.append({"b_id": row.id, "b_due": row.due_at, "b_next": next_at})
    # The deadline guard keeps a step whose deadline moved meanwhile (resume) at its freshly computed rung.
    conn.execute(
        sa.update(step_t).where(step_t.c.id == sa.bindparam("b_id"), step_t.c.due_at == sa.bindparam("b_due"))
        .values(next_reminder_at=sa.bindparam("b_next")),
        advances,
    )
    if not wanted:
        return result
    insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(reminder_t)
    raised = set(conn.execute(
        insert.on_conflict_do_nothing(index_elements=["step_id", "rung", "due_at"]).returning(reminder_t.c.id),
        [{"id": rid, "step_id": row.id, "case_id": row.case_id, "rung": rung.index, "kind": rung.kind,
          "due_at": row.due_at, "raised_at": now} for row, rung, rid in wanted],
    ).scalars())
    result.reminders = len(raised)
    fresh = [(row, rung, rid) for row, rung, rid in wanted if rid in raised]
    users = _users(conn, fresh)
    notifications, outbox = [], []
    for row, rung, rid in fresh:
        recipients = _recipients(rung.to if rung.to != "owner" else row.owner, row, users,
                                 agencies=set(resolve(row.pathway_id, row.definition_version, conn=conn).agencies))
        if not recipients:
            result.unrouted += 1
            continue
        manager = rung.to == "manager"
        # Units are free text ("Bergen sentrum"): encode it, or the link is no URL and the message cannot be rendered.
        link = (f"{public_url}/reports?unit={quote(row.unit, safe='')}" if manager
                else f"{public_url}/cases/{quote(row.reference, safe='')}")
        payload = {"kind": "manager_escalation" if manager else rung.kind, "due_at": row.due_at.isoformat(),
                   "link": link, "case_reference": None if manager else row.reference,
                   "step_code": None if manager else row.code, "unit": row.unit, "count": 1}
        for user in recipients:
            notifications.append({"id": uuid.uuid5(rid, user.username), "reminder_id": rid, "username": user.username,
                                  "kind": payload["kind"], "case_reference": payload["case_reference"],
                                  "step_code": payload["step_code"], "unit": row.unit, "due_at": row.due_at,
                                  "link": link, "created_at": now, "read_at": None})
            for channel, address in (("email", user.email), ("webhook", user.webhook_url)):
                if address:
                    outbox.append({"id": uuid.uuid5(rid, f"{user.username}/{channel}"), "reminder_id": rid,
                                   "username": user.username, "channel": channel, "payload": payload,
                                   "status": "pending", "attempts": 0, "next_attempt_at": now,
                                   "locked_until": None, "last_error": None, "created_at": now, "sent_at": None})
    if notifications:
        conn.execute(sa.insert(notification_t), notifications)
    if outbox:
        conn.execute(sa.insert(outbox_t), outbox)
    result.notifications, result.outbox = len(notifications), len(outbox)
    return result


def _unaccepted_handovers(conn: sa.Connection, case_ids: set[uuid.UUID]) -> set[tuple[uuid.UUID, str]]:
    rows = conn.execute(sa.select(handover_t.c.case_id, handover_t.c.code)
                        .where(handover_t.c.case_id.in_(case_ids), handover_t.c.status == "requested"))
    return {(r.case_id, r.code) for r in rows}


def _users(conn: sa.Connection, fresh: list[tuple[sa.Row[Any], RungDue, uuid.UUID]]) -> list[sa.Row[Any]]:
    """Everyone who could receive this batch's reminders, in one query."""
    units = {row.unit for row, _, _ in fresh}
    names = {row.coordinator for row, _, _ in fresh if row.coordinator}
    owners = {row.owner for row, _, _ in fresh}
    query = sa.select(user_t.c.username, user_t.c.role, user_t.c.unit, user_t.c.agency, user_t.c.email,
                      user_t.c.webhook_url).where(user_t.c.active.is_(True), sa.or_(
        sa.and_(user_t.c.role.in_(["coordinator", "manager"]), user_t.c.unit.in_(units)),
        sa.and_(user_t.c.role == "partner", user_t.c.agency.in_(owners)),
        user_t.c.username.in_(names),
    )).order_by(user_t.c.username)
    return list(conn.execute(query))


def _recipients(to: str, row: sa.Row[Any], users: list[sa.Row[Any]], *, agencies: set[str]) -> list[sa.Row[Any]]:
    """Who hears of a rung: an agency's contacts, the case's coordinator, or the unit's managers; when nobody
    fits, the unit's coordinators, so that no reminder goes unheard."""
    by_unit: dict[tuple[str, str | None], list[sa.Row[Any]]] = defaultdict(list)
    for user in users:
        by_unit[(user.role, user.unit)].append(user)
    if to in agencies:
        found = [u for u in users if u.role == "partner" and u.agency == to]
    elif to == "manager":
        found = by_unit[("manager", row.unit)]
    elif to == "coordinator" and row.coordinator:
        found = [u for u in users if u.username == row.coordinator]
    else:
        found = []
    return found or by_unit[("coordinator", row.unit)]
