"""Delivery channels for notifications: email (SMTP) and signed webhooks.

Every channel either returns (delivered) or raises :class:`DeliveryError`, whose ``transient`` flag
says whether retrying later with the same idempotency key makes sense. No channel puts a message's
subject or body in an error or a log line.
"""

from notifications.channels.base import EmailSender, WebhookSender
from notifications.channels.email import EmailChannel, message_id_for
from notifications.channels.errors import DeliveryError
from notifications.channels.webhook import WebhookChannel, payload_for, sign, verify_signature

__all__ = [
    "DeliveryError",
    "EmailChannel",
    "EmailSender",
    "WebhookChannel",
    "WebhookSender",
    "message_id_for",
    "payload_for",
    "sign",
    "verify_signature",
]
