"""What the channels have in common: the shapes the dispatcher sends through, and one way to log an attempt."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from notifications.channels.errors import DeliveryError
from notifications.message import Message, Rendered

__all__ = ["EmailSender", "WebhookSender", "logged"]


class EmailSender(Protocol):
    """Delivers a rendered notification to an email address (``EmailChannel``, or a fake in tests)."""

    def send(self, *, to: str, message: Message, rendered: Rendered) -> None: ...


class WebhookSender(Protocol):
    """Delivers a notification to a webhook URL (``WebhookChannel``, or a fake in tests)."""

    def send(self, *, url: str, message: Message) -> None: ...


def logged(log: logging.Logger, channel: str, message: Message, deliver: Callable[[], None]) -> None:
    """Run ``deliver`` and log how it went, by idempotency key and kind only (never subject, body or address).

    A :class:`DeliveryError` is logged and raised again unchanged."""
    key = message.idempotency_key
    try:
        deliver()
    except DeliveryError as exc:
        log.warning("%s not delivered: key=%s transient=%s reason=%s", channel, key, exc.transient, exc.reason)
        raise
    log.info("%s delivered: key=%s kind=%s", channel, key, message.kind)
