"""The in-app inbox of each user (the notification table): notifications written by the reminder scan, read or
unread, one by one or grouped per case."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pathway.store.engine import WRITE
from pathway.store.tables import notification_t


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
