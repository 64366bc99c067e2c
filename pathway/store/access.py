"""The access log and emergency (break-glass) grants: rows appended, never changed, and the two lookups the access
policy asks (whose case a reference is, whether a user holds a grant for it)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from pathway.store.engine import WRITE
from pathway.store.tables import access_t, break_glass_t, case_t

Writer = Callable[[sa.Connection], None]  # writes more in a transaction that someone else opened and commits


def append_access(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Append access-log rows (one statement) in the caller's transaction."""
    conn.execute(sa.insert(access_t), rows)


def access_writer(*, username: str, role: str, action: str, client: str | None, case_reference: str | None = None,
                  task_id: uuid.UUID | None = None, status: int = 200, break_glass: bool = False,
                  reason: str | None = None,
                  shown: list[tuple[str | None, uuid.UUID | None]] | None = None) -> Writer:
    """Writes the access-log rows of one read or write, of the API, the pages or the CLI alike, on a given connection
    (inside the read's or the change's own transaction): one row, or with ``shown`` one per (case reference, task)
    that a list showed (a list that showed nothing: one row without a case). ``client``: where from."""

    def write(conn: sa.Connection) -> None:
        at = datetime.now(timezone.utc)
        targets = [(case_reference, task_id)] if shown is None else (shown or [(None, None)])
        append_access(conn, [dict(id=uuid.uuid4(), at=at, username=username, role=role, action=action,
                                  case_reference=reference, task_id=task, client=client, status=status,
                                  break_glass=break_glass, reason=reason) for reference, task in targets])

    return write


def apart(engine: sa.Engine, write: Writer) -> None:
    """Run ``write`` in a write transaction of its own."""
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        write(conn)


def grant_break_glass(conn: sa.Connection, *, username: str, case_id: uuid.UUID, reason: str, granted_at: datetime,
                      expires_at: datetime) -> None:
    """Record an emergency grant of one user to one case, in the caller's transaction."""
    conn.execute(sa.insert(break_glass_t).values(id=uuid.uuid4(), username=username, case_id=case_id, reason=reason,
                                                 granted_at=granted_at, expires_at=expires_at))


def case_owner(conn: sa.Connection, reference: str) -> Any | None:
    """The case's id and unit (a row), or None if no case has this reference."""
    return conn.execute(sa.select(case_t.c.id, case_t.c.unit).where(case_t.c.reference == reference)).first()


def has_break_glass(conn: sa.Connection, *, username: str, case_id: uuid.UUID, now: datetime) -> bool:
    """Whether the user holds an unexpired emergency grant for the case."""
    return conn.execute(sa.select(break_glass_t.c.id).where(
        break_glass_t.c.username == username, break_glass_t.c.case_id == case_id,
        break_glass_t.c.expires_at > now).limit(1)).first() is not None
