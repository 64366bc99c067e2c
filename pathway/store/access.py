"""Writing the access log and emergency (break-glass) grants: rows appended, never changed."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pathway.store.engine import WRITE
from pathway.store.tables import access_t, break_glass_t

Writer = Callable[[sa.Connection], None]  # writes more in a transaction that someone else opened and commits


def append_access(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Append access-log rows (one statement) in the caller's transaction."""
    conn.execute(sa.insert(access_t), rows)


def apart(engine: sa.Engine, write: Writer) -> None:
    """Run ``write`` in a write transaction of its own."""
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        write(conn)


def grant_break_glass(conn: sa.Connection, *, username: str, case_id: uuid.UUID, reason: str, granted_at: datetime,
                      expires_at: datetime) -> None:
    """Record an emergency grant of one user to one case, in the caller's transaction."""
    conn.execute(sa.insert(break_glass_t).values(id=uuid.uuid4(), username=username, case_id=case_id, reason=reason,
                                                 granted_at=granted_at, expires_at=expires_at))
