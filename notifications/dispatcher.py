"""The outbox dispatcher: delivers email and webhook messages with retries, backoff and a dead-letter state.

Guarantee: at least once, with a stable idempotency key. A row is claimed (with a lease) before sending and
marked sent after; if the process dies in between, the lease runs out and the message is sent again with the
same key (the ``Idempotency-Key`` header of a webhook, the ``Message-ID`` of an email), so the receiver can
drop the second copy. Nothing committed to the outbox is lost.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from notifications.channels.errors import DeliveryError
from notifications.message import Message
from notifications.render import render
from pathway.store.engine import WRITE
from pathway.store.tables import outbox_t, user_t

log = logging.getLogger("forlop.outbox")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=6)
    lease: timedelta = timedelta(minutes=5)

    def delay(self, attempts: int) -> timedelta:
        return min(self.base_delay * (2 ** max(attempts - 1, 0)), self.max_delay)


@dataclass
class DispatchResult:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


def dispatch(*, engine: sa.Engine, email: Any | None, webhook: Any | None, now: datetime,
             policy: RetryPolicy = RetryPolicy(), batch: int = 20) -> DispatchResult:
    """Deliver the outbox messages that are ready at ``now``.

    A claim takes a small batch (default 20), so that the batch is sent well within its lease even when every
    receiver is slow (20 x a 5 s timeout < the 5 minute lease): another dispatcher never takes it over early."""
    result = DispatchResult()
    for row in _claim(engine, now=now, policy=policy, batch=batch):
        try:
            _send(row, email=email, webhook=webhook)
        except DeliveryError as exc:
            dead = not exc.transient or row.attempts >= policy.max_attempts
            _finish(engine, row.id, now=now, error=str(exc)[:500], dead=dead, retry_at=now + policy.delay(row.attempts))
            result.dead += dead
            result.retried += not dead
            # The outbox id and channel identify the message; no address or content goes into the log.
            log.warning("outbox %s via %s failed (attempt %d, %s)", row.id, row.channel, row.attempts,
                        "dead" if dead else "will retry")
        except Exception as exc:  # noqa: BLE001 - one message that cannot be built must not stall the whole outbox
            # Not retried (the same row would fail the same way): a dead letter, queued again with `outbox retry`
            # once fixed. Only the exception's type is kept: its text may quote the message.
            _finish(engine, row.id, now=now, error=f"unexpected {type(exc).__name__} while sending via {row.channel}",
                    dead=True)
            result.dead += 1
            log.error("outbox %s via %s failed unexpectedly (%s, dead)", row.id, row.channel, type(exc).__name__)
        else:
            _finish(engine, row.id, now=now)
            result.sent += 1
    return result


def _claim(engine: sa.Engine, *, now: datetime, policy: RetryPolicy, batch: int) -> list[sa.Row[Any]]:
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
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
            status="sending", attempts=outbox_t.c.attempts + 1, locked_until=now + policy.lease))
        return list(conn.execute(
            sa.select(outbox_t.c.id, outbox_t.c.channel, outbox_t.c.payload, outbox_t.c.attempts,
                      outbox_t.c.username, user_t.c.email, user_t.c.webhook_url, user_t.c.language, user_t.c.active)
            .join(user_t, user_t.c.username == outbox_t.c.username, isouter=True)
            .where(outbox_t.c.id.in_(ids)).order_by(outbox_t.c.next_attempt_at, outbox_t.c.id)))


def _send(row: sa.Row[Any], *, email: Any | None, webhook: Any | None) -> None:
    if not row.active:
        raise DeliveryError("the recipient is no longer an active user", transient=False)
    message = to_message(row.id, row.username, row.language, row.payload)
    if row.channel == "email":
        if email is None or not row.email:
            raise DeliveryError("email is not configured for this recipient", transient=False)
        email.send(to=row.email, message=message, rendered=render(message))
    elif row.channel == "webhook":
        if webhook is None or not row.webhook_url:
            raise DeliveryError("no webhook is configured for this recipient", transient=False)
        webhook.send(url=row.webhook_url, message=message)
    else:
        raise DeliveryError(f"unknown channel {row.channel!r}", transient=False)


def to_message(key: uuid.UUID, username: str, language: str | None, payload: dict[str, Any]) -> Message:
    return Message(
        idempotency_key=str(key), kind=payload["kind"], language="en" if language == "en" else "nb",
        recipient=username, due_at=datetime.fromisoformat(payload["due_at"]), link=payload["link"],
        case_reference=payload.get("case_reference"), step_code=payload.get("step_code"),
        unit=payload.get("unit"), count=int(payload.get("count", 1)),
    )


def _finish(engine: sa.Engine, outbox_id: uuid.UUID, *, now: datetime, error: str | None = None,
            dead: bool = False, retry_at: datetime | None = None) -> None:
    if error is None:
        values: dict[str, Any] = {"status": "sent", "sent_at": now, "locked_until": None, "last_error": None}
    elif dead:
        values = {"status": "dead", "locked_until": None, "last_error": error}
    else:
        values = {"status": "pending", "locked_until": None, "last_error": error, "next_attempt_at": retry_at}
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        conn.execute(sa.update(outbox_t).where(outbox_t.c.id == outbox_id).values(**values))


def retry_dead(*, engine: sa.Engine, now: datetime, ids: list[uuid.UUID] | None = None) -> int:
    """Give dead-letter messages (all, or the given ones) a fresh set of attempts."""
    query = sa.update(outbox_t).where(outbox_t.c.status == "dead")
    if ids is not None:
        query = query.where(outbox_t.c.id.in_(ids))
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        return conn.execute(query.values(status="pending", attempts=0, next_attempt_at=now, last_error=None)).rowcount


def list_outbox(*, engine: sa.Engine, status: str | None = "dead", limit: int = 100) -> list[sa.Row[Any]]:
    query = (sa.select(outbox_t.c.id, outbox_t.c.channel, outbox_t.c.username, outbox_t.c.status,
                       outbox_t.c.attempts, outbox_t.c.last_error, outbox_t.c.created_at)
             .order_by(outbox_t.c.created_at).limit(limit))
    if status is not None:
        query = query.where(outbox_t.c.status == status)
    with engine.connect() as conn:
        return list(conn.execute(query))
