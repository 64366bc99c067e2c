"""The access log and emergency (break-glass) grants: log rows appended, never changed; a grant changed only to end it
early. The lookups the access policy asks (whose case a reference is, which grant a user holds for it), and the
notices a grant sends to the owning unit, written in the grant's own transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from notifications.notices import break_glass_notices
from notifications.routing import Candidate
from pathway.store.engine import WRITE
from pathway.store.fixed import Call, Fixed, together
from pathway.store.inbox import write_notices
from pathway.store.tables import access_t, break_glass_t, case_t, user_t

Writer = Callable[[sa.Connection], None]  # writes more in a transaction that someone else opened and commits


# Every read of case data appends to the access log: rendered once, run on the DBAPI cursor.
_APPEND = Fixed(sa.insert(access_t))


@dataclass(frozen=True, slots=True)
class AccessWriter:
    """The access-log rows of one read or write, written on a given connection (inside the read's or the change's
    own transaction): called as a ``Writer``, or sent with the read's own statements (``call``, for
    ``fixed.together``: on PostgreSQL in the same round trip)."""

    username: str
    role: str
    action: str
    client: str | None
    targets: list[tuple[str | None, uuid.UUID | None]]
    status: int
    break_glass: bool
    reason: str | None

    def call(self) -> Call:
        at = datetime.now(timezone.utc)
        return _APPEND, [dict(id=uuid.uuid4(), at=at, username=self.username, role=self.role, action=self.action,
                              case_reference=reference, task_id=task, client=self.client, status=self.status,
                              break_glass=self.break_glass, reason=self.reason) for reference, task in self.targets]

    def __call__(self, conn: sa.Connection) -> None:
        together(conn, [self.call()])


def access_writer(*, username: str, role: str, action: str, client: str | None, case_reference: str | None = None,
                  task_id: uuid.UUID | None = None, status: int = 200, break_glass: bool = False,
                  reason: str | None = None,
                  shown: list[tuple[str | None, uuid.UUID | None]] | None = None) -> AccessWriter:
    """Writes the access-log rows of one read or write, of the API, the pages or the CLI alike: one row, or with
    ``shown`` one per (case reference, task) that a list showed (a list that showed nothing: one row without a
    case). ``client``: where from."""
    targets = [(case_reference, task_id)] if shown is None else (shown or [(None, None)])
    return AccessWriter(username, role, action, client, targets, status, break_glass, reason)


def apart(engine: sa.Engine, write: Writer) -> None:
    """Run ``write`` in a write transaction of its own."""
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        write(conn)


def grant_break_glass(conn: sa.Connection, *, username: str, case_id: uuid.UUID, reason: str,
                      write_reason: str | None, granted_at: datetime, expires_at: datetime,
                      public_url: str) -> int:
    """Record an emergency grant of one user to one case (read-only unless ``write_reason`` is given) and tell the
    owning unit's coordinators and managers: an inbox row each, and an outbox row for each address they gave. All
    in the caller's transaction, so that no grant is ever given untold. Returns how many were told."""
    grant_id = uuid.uuid4()
    conn.execute(sa.insert(break_glass_t).values(id=grant_id, username=username, case_id=case_id, reason=reason,
                                                 write_reason=write_reason, granted_at=granted_at,
                                                 expires_at=expires_at))
    case = conn.execute(sa.select(case_t.c.reference, case_t.c.unit).where(case_t.c.id == case_id)).one()
    users = conn.execute(sa.select(user_t.c.username, user_t.c.role, user_t.c.unit, user_t.c.email,
                                   user_t.c.webhook_url).where(
        user_t.c.active.is_(True), user_t.c.role.in_(["coordinator", "manager"]), user_t.c.unit == case.unit))
    notices = break_glass_notices(
        case_reference=case.reference, unit=case.unit, actor=username, expires_at=expires_at, public_url=public_url,
        candidates=[Candidate(username=u.username, role=u.role, unit=u.unit, email=u.email,
                              webhook_url=u.webhook_url) for u in users])
    write_notices(conn, notices, key=grant_id, at=granted_at)
    return len(notices)


def end_break_glass(conn: sa.Connection, *, case_id: uuid.UUID, holder: str | None, by: str,
                    now: datetime) -> list[str]:
    """End early the running grants to a case (of one ``holder``, or of everyone), in the caller's transaction;
    the names of those whose access ended (none: nothing was running)."""
    query = sa.select(break_glass_t.c.id, break_glass_t.c.username).where(*_running(case_id, now))
    if holder is not None:
        query = query.where(break_glass_t.c.username == holder)
    running = conn.execute(query).all()
    if running:
        conn.execute(sa.update(break_glass_t).where(break_glass_t.c.id.in_([r.id for r in running]),
                                                    break_glass_t.c.ended_at.is_(None))
                     .values(ended_at=now, ended_by=by))
    return sorted({r.username for r in running})


def case_owner(conn: sa.Connection, reference: str) -> Any | None:
    """The case's id, unit, coordinator and ``family`` (a row), or None if no case has this reference. ``family`` is the adult's
    case of a child's pathway (its own id otherwise): an emergency grant to the adult's case also reaches the
    children's pathways, which are part of it."""
    return conn.execute(sa.select(case_t.c.id, case_t.c.unit, case_t.c.coordinator,
                                  sa.func.coalesce(case_t.c.parent_id, case_t.c.id).label("family"))
                        .where(case_t.c.reference == reference)).first()


def _running(case_id: uuid.UUID, now: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    """Of the grants, those to a case that give access now: not run out, not ended early."""
    return (break_glass_t.c.case_id == case_id, break_glass_t.c.expires_at > now, break_glass_t.c.ended_at.is_(None))


def break_glass_held(conn: sa.Connection, *, username: str, case_id: uuid.UUID, now: datetime) -> str | None:
    """Whether the user holds a running emergency grant for the case: None (no), "read", or "write" (a grant asked
    for with its own write reason)."""
    writes = conn.execute(sa.select(break_glass_t.c.write_reason).where(
        break_glass_t.c.username == username, *_running(case_id, now))).scalars().all()
    if not writes:
        return None
    return "write" if any(w is not None for w in writes) else "read"
