"""The access log: every read and write of case data, with who, when, which case, what and from where."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from fastapi import Request

from pathway.accounts import User
from pathway.store.engine import WRITE
from pathway.store.tables import access_t, break_glass_t

BREAK_GLASS_TTL = timedelta(hours=12)


def access_writer(request: Request, user: User, action: str, *, case_reference: str | None = None,
                  task_id: uuid.UUID | None = None, status: int = 200, break_glass: bool = False,
                  reason: str | None = None) -> Callable[[sa.Connection], None]:
    """Writes one access-log row on a given connection: inside a change's own transaction, for writes."""

    def write(conn: sa.Connection) -> None:
        conn.execute(sa.insert(access_t).values(_row(request, user, action, case_reference, task_id, status=status,
                                                     break_glass=break_glass, reason=reason)))

    return write


def _row(request: Request, user: User, action: str, case_reference: str | None, task_id: uuid.UUID | None, *,
         status: int = 200, break_glass: bool = False, reason: str | None = None) -> dict[str, Any]:
    return dict(id=uuid.uuid4(), at=datetime.now(timezone.utc), username=user.username, role=user.role,
                action=action, case_reference=case_reference, task_id=task_id,
                client=request.client.host if request.client else None, status=status, break_glass=break_glass,
                reason=reason)


def log_access(engine: sa.Engine, request: Request, user: User, action: str, *, case_reference: str | None = None,
               task_id: uuid.UUID | None = None, status: int = 200, break_glass: bool = False,
               reason: str | None = None) -> None:
    """Log a read (or a refused write) in a transaction of its own."""
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        access_writer(request, user, action, case_reference=case_reference, task_id=task_id, status=status,
                      break_glass=break_glass, reason=reason)(conn)


def log_accesses(engine: sa.Engine, request: Request, user: User, action: str,
                 shown: list[tuple[str, uuid.UUID | None]]) -> None:
    """Log a read that showed several cases: one row per (case reference, task), in one transaction; a read that
    showed nothing is one row without a case."""
    rows = [_row(request, user, action, reference, task_id) for reference, task_id in shown] \
        or [_row(request, user, action, None, None)]
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        conn.execute(sa.insert(access_t), rows)


def grant_break_glass(engine: sa.Engine, user: User, case_id: uuid.UUID, reason: str) -> datetime:
    now = datetime.now(timezone.utc)
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        conn.execute(sa.insert(break_glass_t).values(id=uuid.uuid4(), username=user.username, case_id=case_id,
                                                     reason=reason, granted_at=now, expires_at=now + BREAK_GLASS_TTL))
    return now + BREAK_GLASS_TTL


def has_break_glass(conn: sa.Connection, user: User, case_id: uuid.UUID) -> bool:
    return conn.execute(sa.select(break_glass_t.c.id).where(
        break_glass_t.c.username == user.username, break_glass_t.c.case_id == case_id,
        break_glass_t.c.expires_at > datetime.now(timezone.utc)).limit(1)).first() is not None


def access_entries(engine: sa.Engine, *, case_reference: str | None, username: str | None,
                   limit: int) -> list[dict[str, Any]]:
    query = sa.select(access_t).order_by(access_t.c.at.desc()).limit(limit)
    if case_reference:
        query = query.where(access_t.c.case_reference == case_reference)
    if username:
        query = query.where(access_t.c.username == username)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
