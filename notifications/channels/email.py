"""Email delivery over SMTP (optionally STARTTLS + AUTH), with a Message-ID stable across retries.

A notification resent after a crash gets the same ``Message-ID`` (derived from the message's
idempotency key), so receiving systems that de-duplicate on Message-ID drop the second copy. The
key is also carried as ``X-Forlop-Idempotency-Key``.

Errors are mapped to :class:`DeliveryError`: a connection that cannot be made, a timeout, a dropped
connection or a 4xx reply is *transient*; a 5xx reply (recipient refused, authentication failed,
message rejected), a server that lacks STARTTLS/AUTH when we need it, or a certificate that does
not verify is *permanent*. Neither the errors nor the log ever carry the subject or the body.
"""

from __future__ import annotations

import email.policy
import hashlib
import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from notifications.channels.base import logged
from notifications.channels.errors import DeliveryError
from notifications.message import Message, Rendered

__all__ = ["EmailChannel", "message_id_for"]

log = logging.getLogger(__name__)

# A conservative subset of RFC 5322 dot-atom-text for the left part of a msg-id.
_SAFE_KEY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_+=-]|\.(?!\.))*[A-Za-z0-9_+=-]|[A-Za-z0-9]")
MESSAGE_ID_DOMAIN = "forlop"
# "Message-ID: <" + key + "@forlop>" must fit in 78 characters, or the header gets folded.
_MAX_KEY_IN_ID = 78 - len("Message-ID: <") - len("@>") - len(MESSAGE_ID_DOMAIN)


def message_id_for(idempotency_key: str) -> str:
    """The Message-ID for a notification: ``<{key}@forlop>``, deterministic in the key.

    Keys that are not safe inside a msg-id (spaces, ``:``, ``@``, non-ASCII) or too long for the
    header to stay on one line are replaced by ``k-`` and the first 40 hex digits of the key's
    SHA-256, which is just as deterministic.
    """
    if not idempotency_key:
        raise ValueError("idempotency key is empty")
    left = idempotency_key
    if len(left) > _MAX_KEY_IN_ID or not _SAFE_KEY.fullmatch(left):
        left = "k-" + hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:40]
    return f"<{left}@{MESSAGE_ID_DOMAIN}>"


def _no_newlines(value: str, what: str) -> None:
    if "\r" in value or "\n" in value:
        raise DeliveryError(f"email: {what} contains a line break", transient=False)


class EmailChannel:
    """Sends one rendered notification as a multipart/alternative (text + HTML, UTF-8) email.

    With ``starttls=True`` the connection is upgraded before anything else is said, verifying the
    server certificate against ``ssl_context`` (default: the system trust store). Credentials, if
    given, are used after that; without ``starttls`` they are sent only if the server offers AUTH
    on a plain connection, so configure ``starttls=True`` whenever a password is set.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        _no_newlines(sender, "sender")
        self.host = host
        self.port = port
        self.sender = sender
        self.starttls = starttls
        self.username = username
        self._password = password
        self.timeout = timeout
        self.ssl_context = ssl_context

    def __repr__(self) -> str:  # never shows the password
        return (
            f"EmailChannel(host={self.host!r}, port={self.port!r}, sender={self.sender!r}, "
            f"starttls={self.starttls!r}, username={self.username!r})"
        )

    def build(self, *, to: str, message: Message, rendered: Rendered) -> EmailMessage:
        """The email as it will be sent (exposed for tests and previews)."""
        _no_newlines(to, "recipient address")
        _no_newlines(rendered.subject, "subject")
        _no_newlines(message.idempotency_key, "idempotency key")
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = rendered.subject
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = message_id_for(message.idempotency_key)
        msg["X-Forlop-Idempotency-Key"] = message.idempotency_key
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
        msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
        msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
        return msg

    def send(self, *, to: str, message: Message, rendered: Rendered) -> None:
        """Deliver to ``to``; returns when the server has accepted the message, else raises DeliveryError."""
        msg = self.build(to=to, message=message, rendered=rendered)
        logged(log, "email", message, lambda: self._deliver(to, msg))

    def _deliver(self, to: str, msg: EmailMessage) -> None:
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except smtplib.SMTPConnectError as exc:
            raise _from_reply("connect", exc.smtp_code) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise _from_other("connect", exc) from None
        stage = "greeting"
        try:
            smtp.ehlo()
            if self.starttls:
                stage = "starttls"
                smtp.starttls(context=self.ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if self.username is not None:
                stage = "auth"
                smtp.login(self.username, self._password or "")
            stage = "send"
            smtp.send_message(msg, from_addr=self.sender, to_addrs=[to])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _reply in exc.recipients.values()]
            raise _from_reply("rcpt", min(codes) if codes else 550) from None
        except smtplib.SMTPResponseException as exc:  # auth, sender, data, helo errors
            raise _from_reply(stage, exc.smtp_code) from None
        except (smtplib.SMTPException, OSError, UnicodeError) as exc:
            raise _from_other(stage, exc) from None
        finally:
            _close(smtp)


def _from_reply(stage: str, code: int) -> DeliveryError:
    transient = not (500 <= code < 600)  # 4xx: try again later; odd codes (-1, 421...) too
    return DeliveryError(f"email: {stage} failed with SMTP reply {code}", transient=transient, status=code)


def _from_other(stage: str, exc: BaseException) -> DeliveryError:
    kind = type(exc).__name__
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError(f"email: {stage}: server certificate not trusted ({kind})", transient=False)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(f"email: {stage}: not supported by the server ({kind})", transient=False)
    if type(exc) is smtplib.SMTPException and stage == "auth":  # "No suitable authentication method" 
        return DeliveryError(f"email: auth: no usable mechanism ({kind})", transient=False)
    if isinstance(exc, UnicodeError):
        return DeliveryError(f"email: {stage}: cannot encode ({kind})", transient=False)
    return DeliveryError(f"email: {stage} failed ({kind})", transient=True)


def _close(smtp: smtplib.SMTP) -> None:
    """QUIT politely; a failure here does not undo a delivery that already succeeded."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        try:
            smtp.close()
        except OSError:
            pass
