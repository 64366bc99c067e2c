"""Webhook delivery: a small signed JSON POST, safe to repeat.

The body is compact JSON with exactly these fields and nothing else::

    {"id": <idempotency key>, "kind": ..., "case_reference": ... | null, "step": <step code> | null,
     "due_at": "2026-03-02T08:00:00Z", "link": ..., "unit": ... | null, "count": <int> | null}

``count`` is null only in a daily digest (``overdue_digest``) of 1 to 4 steps: "fewer than 5", as in the managers'
report. A digest never names a checkpoint: its counts per checkpoint are in the inbox only.

Headers: ``Content-Type: application/json``, ``Idempotency-Key: <key>`` (the same on every retry,
so receivers can drop duplicates), ``X-Forlop-Timestamp: <unix seconds>`` and
``X-Forlop-Signature: sha256=<hex>``, the HMAC-SHA256 of the *raw body bytes* under the shared
secret. Only the body is signed, not the timestamp (kept simple on purpose): receivers verify with
:func:`verify_signature` on the bytes exactly as received, and use ``id`` to reject replays.

Outcome: any 2xx is delivered. 408, 429, 5xx, connection errors and timeouts raise a *transient*
:class:`DeliveryError`; every other status, including 3xx (redirects are never followed, since a
redirect could carry the payload somewhere nobody configured), raises a *permanent* one, as do URLs
that are not http(s). The response body is never read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import UTC
from urllib.parse import urlsplit

import httpx

from notifications.channels.base import logged
from notifications.channels.errors import DeliveryError
from notifications.message import Message

__all__ = ["WebhookChannel", "payload_for", "sign", "verify_signature"]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Forlop-Signature"
TIMESTAMP_HEADER = "X-Forlop-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
PAYLOAD_FIELDS: tuple[str, ...] = ("id", "kind", "case_reference", "step", "due_at", "link", "unit", "count")


def payload_for(message: Message) -> dict[str, object]:
    """The JSON object sent for ``message``: exactly :data:`PAYLOAD_FIELDS`."""
    if message.due_at.tzinfo is None or message.due_at.utcoffset() is None:
        raise DeliveryError("webhook: due_at is not timezone-aware", transient=False)
    due = message.due_at.astimezone(UTC).replace(microsecond=0)
    return {
        "id": message.idempotency_key,
        "kind": message.kind,
        "case_reference": message.case_reference,
        "step": message.step_code,
        "due_at": due.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "link": message.link,
        "unit": message.unit,
        "count": message.count,
    }


def encode_body(message: Message) -> bytes:
    """The raw body bytes (compact JSON, ASCII-escaped) that are sent and signed."""
    return json.dumps(payload_for(message), separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign(secret: str, body: bytes) -> str:
    """The ``X-Forlop-Signature`` value for ``body``: ``sha256=<hex HMAC-SHA256(secret, body)>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """True if ``header`` is the signature of ``body`` under ``secret`` (constant-time compare)."""
    if not secret or not isinstance(header, str):
        return False
    try:
        given = header.strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(sign(secret, body).encode("ascii"), given)


def _is_transient_status(status: int) -> bool:
    return status in (408, 429) or 500 <= status < 600


class WebhookChannel:
    """POSTs signed notifications to http(s) URLs; see the module docstring for the contract."""

    def __init__(self, *, secret: str, timeout: float = 5.0) -> None:
        if not secret:
            raise ValueError("webhook secret is empty")
        self._secret = secret
        self.timeout = timeout

    def __repr__(self) -> str:  # never shows the secret
        return f"WebhookChannel(timeout={self.timeout!r})"

    def send(self, *, url: str, message: Message) -> None:
        """Deliver to ``url``; returns on a 2xx answer, else raises DeliveryError."""
        logged(log, "webhook", message, lambda: self._post(url, message))

    def _post(self, url: str, message: Message) -> None:
        _check_url(url)
        if "\r" in message.idempotency_key or "\n" in message.idempotency_key:
            raise DeliveryError("webhook: idempotency key contains a line break", transient=False)
        body = encode_body(message)
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: message.idempotency_key,
            TIMESTAMP_HEADER: str(int(time.time())),
            SIGNATURE_HEADER: sign(self._secret, body),
            "User-Agent": "forlop-webhook/1",
        }
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
                with client.stream("POST", url, content=body, headers=headers) as response:
                    status = response.status_code  # the response body is not read
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"webhook: timed out ({type(exc).__name__})", transient=True) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise DeliveryError(f"webhook: unusable URL ({type(exc).__name__})", transient=False) from None
        except httpx.HTTPError as exc:  # connection refused/reset, DNS, TLS, protocol errors
            raise DeliveryError(f"webhook: request failed ({type(exc).__name__})", transient=True) from None
        except OSError as exc:
            raise DeliveryError(f"webhook: request failed ({type(exc).__name__})", transient=True) from None
        if 200 <= status < 300:
            return
        if 300 <= status < 400:
            raise DeliveryError(f"webhook: redirect {status} not followed", transient=False, status=status)
        raise DeliveryError(
            f"webhook: receiver answered HTTP {status}", transient=_is_transient_status(status), status=status
        )


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise DeliveryError("webhook: malformed URL", transient=False) from None
    if parts.scheme not in ("http", "https") or not host:
        raise DeliveryError("webhook: only http and https URLs are accepted", transient=False)
