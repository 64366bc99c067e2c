"""The answers to POSTs sent with an Idempotency-Key: one row per user and key, so that a retried request gets the
first answer instead of being applied twice. A key is claimed in the change's own transaction (status 0, no body)
and given its answer once the change has been answered."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from pathway.errors import ConstraintViolated
from pathway.store.access import Writer
from pathway.store.engine import WRITE
from pathway.store.tables import idempotency_t


@dataclass(frozen=True, slots=True)
class KeyedRequest:
    """A POST with an Idempotency-Key: whose key, and which request (``fingerprint``: of its path and body)."""

    username: str
    key: str
    method: str
    path: str
    fingerprint: str
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@dataclass(frozen=True, slots=True)
class Answer:
    """What a key was first used for and the answer given then; ``body`` is None while the key is only claimed."""

    fingerprint: str
    status: int
    body: Any


def _row(request: KeyedRequest) -> dict[str, Any]:
    return dict(username=request.username, key=request.key, method=request.method, path=request.path[:500],
                fingerprint=request.fingerprint, created_at=request.at)


def _this_key(request: KeyedRequest) -> sa.ColumnElement[bool]:
    return sa.and_(idempotency_t.c.username == request.username, idempotency_t.c.key == request.key)


def answer_for(engine: sa.Engine, request: KeyedRequest) -> Answer | None:
    """The answer stored under the user's key, or None if the key is new."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(idempotency_t.c.fingerprint, idempotency_t.c.status, idempotency_t.c.body)
                           .where(_this_key(request))).first()
    return None if row is None else Answer(row.fingerprint, row.status, row.body)


def claim(request: KeyedRequest) -> Writer:
    """Writes the claim of the key in the change's own transaction: if the answer is lost after the change
    committed, a retry finds the claim and knows the change was made."""

    def write(conn: sa.Connection) -> None:
        conn.execute(sa.insert(idempotency_t).values(**_row(request), status=0, body=None))

    return write


def store_answer(engine: sa.Engine, request: KeyedRequest, *, status: int, body: Any, claimed: bool) -> None:
    """Store the answer under the key (the row ``claim`` wrote, when ``claimed``). If a concurrent retry stored one
    first, that one stays: the retry's change was refused by the version check."""
    try:
        with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            if claimed:
                conn.execute(sa.update(idempotency_t).where(_this_key(request)).values(status=status, body=body))
            else:
                conn.execute(sa.insert(idempotency_t).values(**_row(request), status=status, body=body))
    except ConstraintViolated:
        pass
