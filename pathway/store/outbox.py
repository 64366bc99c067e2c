"""The outbox table: the dispatcher's store (claim with a lease, mark sent, to retry or dead), and the dead-letter
commands of ``forlop outbox``. What a failure means is decided in ``notifications.dispatcher``, not here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from notifications.channels import EmailSender, WebhookSender
from notifications.dispatcher import Delivery, DispatchResult, RetryPolicy
from notifications.dispatcher import dispatch as deliver
from pathway.store.engine import WRITE
from pathway.store.tables import outbox_t, user_t


class SqlOutbox:
    """The outbox in the database, as ``notifications.dispatcher.OutboxStore``. Each call is its own transaction:
    a claim is committed before anything is sent, and each message is settled as soon as its send returns."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def claim(self, *, now: datetime, lease: timedelta, batch: int) -> list[Delivery]:
        with self.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            query = (
                sa.select(outbox_t.c.id).where(
                    outbox_t.c.status.in_(["pending", "sending"]), outbox_t.c.next_attempt_at <= now,
                    sa.or_(outbox_t.c.locked_until.is_(None), outbox_t.c.locked_until < now))
                .order_by(outbox_t.c.next_attempt_at, outbox_t.c.id).limit(batch)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(conn.execute(query).scalars())
            if not ids:
                return []
            conn.execute(sa.update(outbox_t).where(outbox_t.c.id.in_(ids)).values(
                status="sending", attempts=outbox_t.c.attempts + 1, locked_until=now + lease))
            rows = conn.execute(
                sa.select(outbox_t.c.id, outbox_t.c.channel, outbox_t.c.payload, outbox_t.c.attempts,
                          outbox_t.c.username, user_t.c.email, user_t.c.webhook_url, user_t.c.language,
                          user_t.c.active)
                .join(user_t, user_t.c.username == outbox_t.c.username, isouter=True)
                .where(outbox_t.c.id.in_(ids)).order_by(outbox_t.c.next_attempt_at, outbox_t.c.id))
            return [Delivery(id=r.id, channel=r.channel, payload=r.payload, attempts=r.attempts, username=r.username,
                             email=r.email, webhook_url=r.webhook_url, language=r.language, active=bool(r.active))
                    for r in rows]

    def mark_sent(self, outbox_id: uuid.UUID, *, now: datetime) -> None:
        self._set(outbox_id, status="sent", sent_at=now, locked_until=None, last_error=None)

    def mark_retry(self, outbox_id: uuid.UUID, *, error: str, at: datetime) -> None:
        self._set(outbox_id, status="pending", locked_until=None, last_error=error, next_attempt_at=at)

    def mark_dead(self, outbox_id: uuid.UUID, *, error: str) -> None:
        self._set(outbox_id, status="dead", locked_until=None, last_error=error)

    def _set(self, outbox_id: uuid.UUID, **values: Any) -> None:
        with self.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            conn.execute(sa.update(outbox_t).where(outbox_t.c.id == outbox_id).values(**values))


def dispatch(*, engine: sa.Engine, email: EmailSender | None, webhook: WebhookSender | None, now: datetime,
             policy: RetryPolicy = RetryPolicy(), batch: int = 20) -> DispatchResult:
    """Deliver the database's outbox messages that are ready at ``now`` (``notifications.dispatcher.dispatch``)."""
    return deliver(outbox=SqlOutbox(engine), email=email, webhook=webhook, now=now, policy=policy, batch=batch)


def retry_dead(*, engine: sa.Engine, now: datetime, ids: list[uuid.UUID] | None = None) -> int:
    """Give dead-letter messages (all, or the given ones) a fresh set of attempts."""
    query = sa.update(outbox_t).where(outbox_t.c.status == "dead")
    if ids is not None:
        query = query.where(outbox_t.c.id.in_(ids))
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        return conn.execute(query.values(status="pending", attempts=0, next_attempt_at=now, last_error=None)).rowcount


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox message as ``forlop outbox list`` shows it: no payload, no address."""

    id: uuid.UUID
    channel: str
    username: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime


def list_outbox(*, engine: sa.Engine, status: str | None = "dead", limit: int = 100) -> list[OutboxEntry]:
    """The outbox messages in one status (None: all), oldest first."""
    query = (sa.select(outbox_t.c.id, outbox_t.c.channel, outbox_t.c.username, outbox_t.c.status,
                       outbox_t.c.attempts, outbox_t.c.last_error, outbox_t.c.created_at)
             .order_by(outbox_t.c.created_at).limit(limit))
    if status is not None:
        query = query.where(outbox_t.c.status == status)
    with engine.connect() as conn:
        return [OutboxEntry(id=r.id, channel=r.channel, username=r.username, status=r.status, attempts=r.attempts,
                            last_error=r.last_error, created_at=r.created_at) for r in conn.execute(query)]
