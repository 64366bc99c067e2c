"""The one error every notification channel raises when a message could not be delivered."""

from __future__ import annotations


class DeliveryError(Exception):
    """A message was not delivered.

    ``transient`` tells the caller what to do next: ``True`` means the same message may well get
    through later (connection refused, timeout, 4xx SMTP reply, HTTP 5xx/408/429), so retry it with
    the same idempotency key; ``False`` means retrying will not help (recipient refused,
    authentication failed, HTTP 4xx, a redirect, a bad URL) until someone changes configuration.

    The text of the error is written by the channels themselves from the channel name, the kind of
    failure and a status code. It never contains the message's subject or body, nor the reply text
    of a remote server (which may echo addresses back); the underlying exception is not chained.
    """

    def __init__(self, reason: str, *, transient: bool, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.status = status  # SMTP reply code or HTTP status, when there was one

    def __repr__(self) -> str:
        return f"DeliveryError({self.reason!r}, transient={self.transient!r}, status={self.status!r})"
