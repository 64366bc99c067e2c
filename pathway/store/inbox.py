"""The in-app inbox of each user (the notification table): notifications written by the reminder scan, read or
unread."""

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
