"""The answers to POSTs sent with an Idempotency-Key: one row per user and key, so that a retried request gets the
first answer instead of being applied twice. A key is claimed in the change's own transaction (status 0, no body)
and given its answer once the change has been answered.

An answer is a case as the API returned it (its timeline's reasons, its steps' titles): it is stored encrypted under
the master key ring, bound to its user and key, and kept a day (``ANSWER_TTL``, ``purge_answers``), after which a
retry is a new request; so it is never in the database as plain text, and never outlives a case's erasure."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from pathway.crypto import KeyRing
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


ANSWER_TTL = timedelta(days=1)  # how long a retry gets the first answer (as Stripe's keys): then a new request


def _aad(request: KeyedRequest) -> bytes:
    return f"idempotency:{request.username}:{request.key}".encode()


def _sealed(body: Any, request: KeyedRequest, keys: KeyRing) -> dict[str, str]:
    return {"sealed": base64.b64encode(keys.encrypt_json(body, aad=_aad(request))).decode("ascii")}


def answer_for(engine: sa.Engine, request: KeyedRequest, *, keys: KeyRing) -> Answer | None:
    """The answer stored under the user's key, or None if the key is new."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(idempotency_t.c.fingerprint, idempotency_t.c.status, idempotency_t.c.body)
                           .where(_this_key(request))).first()
    if row is None:
        return None
    body = row.body
    if isinstance(body, dict) and set(body) == {"sealed"}:
        body = keys.decrypt_json(base64.b64decode(body["sealed"]), aad=_aad(request))
    return Answer(row.fingerprint, row.status, body)


def purge_answers(engine: sa.Engine, *, now: datetime) -> int:
    """Delete the answers older than ``ANSWER_TTL``; returns how many."""
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        return conn.execute(sa.delete(idempotency_t).where(idempotency_t.c.created_at < now - ANSWER_TTL)).rowcount


def claim(request: KeyedRequest) -> Writer:
    """Writes the claim of the key in the change's own transaction: if the answer is lost after the change
    committed, a retry finds the claim and knows the change was made."""

    def write(conn: sa.Connection) -> None:
        conn.execute(sa.insert(idempotency_t).values(**_row(request), status=0, body=None))

    return write


def store_answer(engine: sa.Engine, request: KeyedRequest, *, status: int, body: Any, claimed: bool,
                 keys: KeyRing) -> None:
    """Store the answer under the key (the row ``claim`` wrote, when ``claimed``), encrypted. If a concurrent retry
    stored one first, that one stays: the retry's change was refused by the version check."""
    body = _sealed(body, request, keys)
    try:
        with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            if claimed:
                conn.execute(sa.update(idempotency_t).where(_this_key(request)).values(status=status, body=body))
            else:
                conn.execute(sa.insert(idempotency_t).values(**_row(request), status=status, body=body))
    except ConstraintViolated:
        pass
