"""The outbox dispatcher: delivers email and webhook messages with retries, backoff and a dead-letter state.

Guarantee: at least once, with a stable idempotency key. A row is claimed (with a lease) before sending and
marked sent after; if the process dies in between, the lease runs out and the message is sent again with the
same key (the ``Idempotency-Key`` header of a webhook, the ``Message-ID`` of an email), so the receiver can
drop the second copy. Nothing committed to the outbox is lost.

The outbox itself is reached through :class:`OutboxStore` (the database's table implements it in the store
layer): this module decides what to send and what a failure means, the store only keeps the rows.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from notifications.channels.base import EmailSender, WebhookSender
from notifications.channels.errors import DeliveryError
from notifications.message import Message, shown_count
from notifications.render import render

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


@dataclass(frozen=True, slots=True)
class Delivery:
    """One claimed outbox message, with where its recipient takes messages (all None once the user is gone)."""

    id: uuid.UUID
    channel: str
    payload: dict[str, Any]
    attempts: int  # counting the attempt this claim is for
    username: str
    email: str | None = None
    webhook_url: str | None = None
    language: str | None = None
    active: bool = False


class OutboxStore(Protocol):
    """Where outbox messages wait. ``claim`` leases a batch of due messages (and counts the attempt); exactly one
    of the ``mark_*`` calls settles each claimed message."""

    def claim(self, *, now: datetime, lease: timedelta, batch: int) -> Sequence[Delivery]: ...

    def mark_sent(self, outbox_id: uuid.UUID, *, now: datetime) -> None: ...

    def mark_retry(self, outbox_id: uuid.UUID, *, error: str, at: datetime) -> None: ...

    def mark_dead(self, outbox_id: uuid.UUID, *, error: str) -> None: ...


def dispatch(*, outbox: OutboxStore, email: EmailSender | None, webhook: WebhookSender | None, now: datetime,
             policy: RetryPolicy = RetryPolicy(), batch: int = 20) -> DispatchResult:
    """Deliver the outbox messages that are ready at ``now``.

    A claim takes a small batch (default 20), so that the batch is sent well within its lease even when every
    receiver is slow (20 x a 5 s timeout < the 5 minute lease): another dispatcher never takes it over early."""
    result = DispatchResult()
    for row in outbox.claim(now=now, lease=policy.lease, batch=batch):
        try:
            _send(row, email=email, webhook=webhook)
        except DeliveryError as exc:
            dead = not exc.transient or row.attempts >= policy.max_attempts
            if dead:
                outbox.mark_dead(row.id, error=str(exc)[:500])
            else:
                outbox.mark_retry(row.id, error=str(exc)[:500], at=now + policy.delay(row.attempts))
            result.dead += dead
            result.retried += not dead
            # The outbox id and channel identify the message; no address or content goes into the log.
            log.warning("outbox %s via %s failed (attempt %d, %s)", row.id, row.channel, row.attempts,
                        "dead" if dead else "will retry")
        except Exception as exc:  # noqa: BLE001 - one message that cannot be built must not stall the whole outbox
            # Not retried (the same row would fail the same way): a dead letter, queued again with `outbox retry`
            # once fixed. Only the exception's type is kept: its text may quote the message.
            outbox.mark_dead(row.id, error=f"unexpected {type(exc).__name__} while sending via {row.channel}")
            result.dead += 1
            log.error("outbox %s via %s failed unexpectedly (%s, dead)", row.id, row.channel, type(exc).__name__)
        else:
            outbox.mark_sent(row.id, now=now)
            result.sent += 1
    return result


def _send(row: Delivery, *, email: EmailSender | None, webhook: WebhookSender | None) -> None:
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
    """The message an outbox payload stands for, in the recipient's language. A digest's count from 1 to 4 is never
    told (None: "fewer than 5"), also from a payload written before that rule; its counts per checkpoint, if such an
    old payload has them, are never read: they belong to the inbox only."""
    lang: Literal["nb", "en"] = "en" if language == "en" else "nb"
    count = payload.get("count", 1)
    if payload["kind"] == "overdue_digest":
        count = shown_count(count)
    return Message(
        idempotency_key=str(key), kind=payload["kind"], language=lang,
        recipient=username, due_at=datetime.fromisoformat(payload["due_at"]), link=payload["link"],
        case_reference=payload.get("case_reference"), step_code=payload.get("step_code"),
        unit=payload.get("unit"), count=None if count is None else int(count), actor=payload.get("actor"),
        unit_name=payload.get("unit_name"),
    )
