"""The in-app inbox of each user (the notification table): notifications written by the reminder scan, or as notices
in the transaction of what they tell of (an emergency access, a declined handover), read or unread, one by one or
grouped per case."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from notifications.notices import Notice, handover_declined_notices
from notifications.routing import Candidate
from pathway.store.engine import WRITE
from pathway.store.tables import case_t, handover_t, notification_t, outbox_t, user_t


def write_notices(conn: sa.Connection, notices: Sequence[Notice], *, key: uuid.UUID, at: datetime) -> None:
    """An inbox row for each notice and an outbox row for each of its channels, in the caller's transaction. Their ids
    derive from ``key`` (what the notices tell of, e.g. the grant), so that telling twice fails rather than sends
    twice."""
    inbox_rows = [{"id": uuid.uuid5(key, n.username), "reminder_id": None, "username": n.username, "kind": n.kind,
                   "case_reference": n.case_reference, "step_code": n.step_code, "unit": n.unit, "due_at": n.due_at,
                   "link": n.link, "created_at": at, "read_at": None, "digest": n.inbox_digest()}
                  for n in notices]
    outbox_rows = [{"id": uuid.uuid5(key, f"{n.username}/{channel}"), "reminder_id": None, "username": n.username,
                    "channel": channel, "payload": n.payload(), "status": "pending", "attempts": 0,
                    "next_attempt_at": at, "locked_until": None, "last_error": None, "created_at": at,
                    "sent_at": None} for n in notices for channel in n.channels]
    if inbox_rows:
        conn.execute(sa.insert(notification_t), inbox_rows)
    if outbox_rows:
        conn.execute(sa.insert(outbox_t), outbox_rows)


def declined_writer(task_id: uuid.UUID, *, public_url: str,
                    at: datetime | None = None) -> Callable[[sa.Connection], None]:
    """Writes, in the transaction that declined the handover task ``task_id`` (after the change), the notices that
    tell the case's coordinator (else the unit's active coordinators) of it, without naming the agency; nothing if
    the task is not declined. ``at``: when they are told (now by default)."""

    def write(conn: sa.Connection) -> None:
        task = conn.execute(
            sa.select(handover_t.c.code, handover_t.c.status, handover_t.c.due_at, case_t.c.reference,
                      case_t.c.unit, case_t.c.coordinator)
            .join(case_t, case_t.c.id == handover_t.c.case_id).where(handover_t.c.id == task_id)).one_or_none()
        if task is None or task.status != "declined":
            return
        when = at or datetime.now(timezone.utc)
        users = conn.execute(sa.select(user_t.c.username, user_t.c.role, user_t.c.unit, user_t.c.email,
                                       user_t.c.webhook_url)
                             .where(user_t.c.active.is_(True), user_t.c.role == "coordinator",
                                    user_t.c.unit == task.unit))
        notices = handover_declined_notices(
            case_reference=task.reference, unit=task.unit, coordinator=task.coordinator, step_code=task.code,
            due_at=task.due_at or when, public_url=public_url,
            candidates=[Candidate(username=u.username, role=u.role, unit=u.unit, email=u.email,
                                  webhook_url=u.webhook_url) for u in users])
        write_notices(conn, notices, key=uuid.uuid5(task_id, "declined"), at=when)

    return write


def inbox(*, engine: sa.Engine, username: str, unread_only: bool = False, limit: int = 50) -> list[sa.Row[Any]]:
    query = (sa.select(notification_t).where(notification_t.c.username == username)
             .order_by(notification_t.c.created_at.desc(), notification_t.c.id).limit(limit))
    if unread_only:
        query = query.where(notification_t.c.read_at.is_(None))
    with engine.connect() as conn:
        return list(conn.execute(query))


def by_case(*, engine: sa.Engine, username: str, unread_only: bool = False, limit: int = 50) -> list[sa.Row[Any]]:
    """The user's notifications grouped per case (those without a case form one group, case_reference None), the
    group with the newest notification first, in one query. Each row is the group's newest notification (kind,
    step_code, link, created_at, ...) with ``total`` and ``unread``, the group's counts (of unread ones only, with
    ``unread_only``)."""
    group = notification_t.c.case_reference
    ranked = sa.select(
        notification_t,
        sa.func.row_number().over(partition_by=group, order_by=(notification_t.c.created_at.desc(),
                                                                notification_t.c.id)).label("n"),
        sa.func.count().over(partition_by=group).label("total"),
        sa.func.sum(sa.case((notification_t.c.read_at.is_(None), 1), else_=0)).over(partition_by=group)
        .label("unread"),
    ).where(notification_t.c.username == username)
    if unread_only:
        ranked = ranked.where(notification_t.c.read_at.is_(None))
    sub = ranked.subquery()
    query = sa.select(sub).where(sub.c.n == 1).order_by(sub.c.created_at.desc(), sub.c.id).limit(limit)
    with engine.connect() as conn:
        return list(conn.execute(query))


def unread_count(*, engine: sa.Engine, username: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(notification_t).where(
            notification_t.c.username == username, notification_t.c.read_at.is_(None))).scalar_one()


def mark_read(*, engine: sa.Engine, username: str, ids: list[uuid.UUID], now: datetime, read: bool = True) -> int:
    """Mark the user's own notifications read (or unread again); others' are never touched."""
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        return conn.execute(sa.update(notification_t).where(
            notification_t.c.username == username, notification_t.c.id.in_(ids)
        ).values(read_at=now if read else None)).rowcount


def mark_all_read(*, engine: sa.Engine, username: str, now: datetime,
                  case_references: list[str | None] | None = None) -> int:
    """Mark every unread notification of the user read: all of them, or those of ``case_references`` (None in it:
    those about no case). Others' are never touched."""
    query = sa.update(notification_t).where(notification_t.c.username == username,
                                            notification_t.c.read_at.is_(None))
    if case_references is not None:
        refs = [r for r in case_references if r is not None]
        about = [notification_t.c.case_reference.in_(refs)] if refs else []
        if None in case_references:
            about.append(notification_t.c.case_reference.is_(None))
        query = query.where(sa.or_(sa.false(), *about))
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        return conn.execute(query.values(read_at=now)).rowcount
