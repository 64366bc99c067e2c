"""Notification channels against real servers on 127.0.0.1: aiosmtpd for email, http.server for webhooks.

Only synthetic data: pseudonymous case references, example.org addresses, made-up secrets.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from notifications.channels import (
    DeliveryError,
    EmailChannel,
    WebhookChannel,
    message_id_for,
    verify_signature,
)
from notifications.channels.webhook import PAYLOAD_FIELDS
from notifications.message import Message, Rendered

HOST = "127.0.0.1"
SENDER = "forlop@example.org"
TO = "saksbehandler@example.org"
SMTP_USER = "forlop-relay"
SMTP_PASSWORD = "synthetic-password-1"
WEBHOOK_SECRET = "synthetic-webhook-secret"

OSLO = ZoneInfo("Europe/Oslo")


def make_message(key: str = "ntf-0001-due_soon-sakbeh01", **overrides: object) -> Message:
    fields: dict[str, object] = {
        "idempotency_key": key,
        "kind": "due_soon",
        "language": "nb",
        "recipient": "sakbeh01",
        "due_at": dt.datetime(2026, 3, 2, 9, 0, tzinfo=OSLO),  # 08:00 UTC
        "link": "https://forlop.example.org/cases/TST-2026-0042",
        "case_reference": "TST-2026-0042",
        "step_code": "K6",
        "unit": "unit-a",
        "count": 1,
    }
    fields.update(overrides)
    return Message(**fields)  # type: ignore[arg-type]


RENDERED = Rendered(
    subject="Frist nærmer seg: TST-2026-0042 (K6)",
    text="Steg K6 i sak TST-2026-0042 har frist 2. mars kl. 09:00. Åpne saken: https://forlop.example.org/cases/TST-2026-0042\n",
    html='<p>Steg K6 i sak TST-2026-0042 har frist <b>2. mars kl. 09:00</b>. Åpne <a href="https://forlop.example.org/cases/TST-2026-0042">saken</a>.</p>\n',
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------- SMTP


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    authenticated: bool

    def parsed(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.content, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class CollectingHandler:
    """Accepts everything except ``refused@`` (550) and ``tempfail@`` (451) recipients."""

    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("refused@"):
            return "550 5.1.1 Mailbox unavailable"
        if address.startswith("tempfail@"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.received.append(
            Received(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                content=envelope.original_content or envelope.content,
                tls=session.ssl is not None,
                authenticated=bool(session.authenticated),
            )
        )
        return "250 Message accepted for delivery"


def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, CollectingHandler]]:
    handler = CollectingHandler()
    controller = Controller(handler, hostname=HOST, port=free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


@dataclass
class Certificate:
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert_path))


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1/localhost, valid around the suite's "now" and the real one: OpenSSL
    checks it against the real clock, which a run at a chosen date (FORLOP_TEST_TODAY) does not move."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forlop-test-smtp")])
    now = dt.datetime.now(dt.UTC)
    hatch = time_machine.escape_hatch
    real = hatch.datetime.datetime.now(dt.UTC) if hatch.is_travelling() else now
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now, real) - dt.timedelta(minutes=5))
        .not_valid_after(max(now, real) + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address(HOST)), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / "smtp-cert.pem"
    key_path = tmp_path / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Certificate(cert_path, key_path)


@pytest.fixture
def secure_smtp_server(certificate: Certificate) -> Iterator[tuple[Controller, CollectingHandler]]:
    """STARTTLS required before anything, AUTH required (and only offered over TLS)."""
    handler = CollectingHandler()
    controller = Controller(
        handler,
        hostname=HOST,
        port=free_port(),
        tls_context=certificate.server_context(),
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticator,
    )
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def assert_no_content(exc: DeliveryError) -> None:
    text = f"{exc} {exc!r}"
    assert RENDERED.subject not in text
    assert "Steg K6" not in text
    assert exc.__cause__ is None


def test_email_is_delivered_as_multipart_alternative_with_deterministic_message_id(smtp_server) -> None:
    controller, handler = smtp_server
    message = make_message()
    channel = EmailChannel(host=HOST, port=controller.port, sender=SENDER, timeout=5)

    channel.send(to=TO, message=message, rendered=RENDERED)

    assert len(handler.received) == 1
    got = handler.received[0]
    assert got.mail_from == SENDER
    assert got.rcpt_tos == [TO]
    mail = got.parsed()
    assert mail["From"] == SENDER
    assert mail["To"] == TO
    assert mail["Subject"] == RENDERED.subject
    assert mail.get_content_type() == "multipart/alternative"
    # on the wire lines end in CRLF; the parts decode to the rendered text and HTML
    assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n") == RENDERED.text
    assert mail.get_body(("html",)).get_content().replace("\r\n", "\n") == RENDERED.html
    for part in mail.iter_parts():
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert got.content.isascii()  # 7-bit clean: no 8BITMIME needed on the relay
    assert mail["Message-ID"] == f"<{message.idempotency_key}@forlop>" == message_id_for(message.idempotency_key)
    assert mail["X-Forlop-Idempotency-Key"] == message.idempotency_key
    assert mail["Auto-Submitted"] == "auto-generated"


def test_email_resend_after_a_crash_has_the_same_message_id(smtp_server) -> None:
    controller, handler = smtp_server
    channel = EmailChannel(host=HOST, port=controller.port, sender=SENDER, timeout=5)
    message = make_message()

    channel.send(to=TO, message=message, rendered=RENDERED)
    channel.send(to=TO, message=message, rendered=RENDERED)
    channel.send(to=TO, message=make_message("ntf-0002-overdue-sakbeh01", kind="overdue"), rendered=RENDERED)

    ids = [r.parsed()["Message-ID"] for r in handler.received]
    assert ids[0] == ids[1] != ids[2]


def test_email_message_id_for_keys_unsafe_in_headers_is_still_deterministic(smtp_server) -> None:
    controller, handler = smtp_server
    key = "case:TST-2026-0042 step:K6 @due_soon"
    channel = EmailChannel(host=HOST, port=controller.port, sender=SENDER, timeout=5)

    channel.send(to=TO, message=make_message(key), rendered=RENDERED)

    mail = handler.received[0].parsed()
    assert mail["Message-ID"] == message_id_for(key) == message_id_for(key)
    assert mail["Message-ID"].startswith("<k-") and mail["Message-ID"].endswith("@forlop>")
    assert mail["X-Forlop-Idempotency-Key"] == key


def test_email_over_starttls_with_auth_is_delivered(secure_smtp_server, certificate: Certificate) -> None:
    controller, handler = secure_smtp_server
    channel = EmailChannel(
        host=HOST,
        port=controller.port,
        sender=SENDER,
        starttls=True,
        username=SMTP_USER,
        password=SMTP_PASSWORD,
        timeout=5,
        ssl_context=certificate.client_context(),
    )

    channel.send(to=TO, message=make_message(), rendered=RENDERED)

    assert len(handler.received) == 1
    got = handler.received[0]
    assert got.tls and got.authenticated
    assert got.parsed()["Subject"] == RENDERED.subject
    assert SMTP_PASSWORD not in repr(channel)


def test_email_wrong_password_is_permanent(secure_smtp_server, certificate: Certificate) -> None:
    controller, handler = secure_smtp_server
    channel = EmailChannel(
        host=HOST,
        port=controller.port,
        sender=SENDER,
        starttls=True,
        username=SMTP_USER,
        password="not-the-password",
        timeout=5,
        ssl_context=certificate.client_context(),
    )

    with pytest.raises(DeliveryError) as caught:
        channel.send(to=TO, message=make_message(), rendered=RENDERED)

    assert caught.value.transient is False
    assert caught.value.status == 535
    assert "not-the-password" not in str(caught.value)
    assert_no_content(caught.value)
    assert handler.received == []


def test_email_untrusted_server_certificate_is_permanent(secure_smtp_server) -> None:
    controller, handler = secure_smtp_server
    channel = EmailChannel(
        host=HOST,
        port=controller.port,
        sender=SENDER,
        starttls=True,
        username=SMTP_USER,
        password=SMTP_PASSWORD,
        timeout=5,
        ssl_context=ssl.create_default_context(),  # system trust store: does not know the test cert
    )

    with pytest.raises(DeliveryError) as caught:
        channel.send(to=TO, message=make_message(), rendered=RENDERED)

    assert caught.value.transient is False
    assert handler.received == []


def test_email_without_starttls_to_a_server_requiring_it_is_permanent(secure_smtp_server) -> None:
    controller, handler = secure_smtp_server
    channel = EmailChannel(host=HOST, port=controller.port, sender=SENDER, timeout=5)

    with pytest.raises(DeliveryError) as caught:
        channel.send(to=TO, message=make_message(), rendered=RENDERED)

    assert caught.value.transient is False
    assert caught.value.status == 530
    assert handler.received == []


def test_email_to_a_closed_port_is_transient() -> None:
    channel = EmailChannel(host=HOST, port=free_port(), sender=SENDER, timeout=2)

    with pytest.raises(DeliveryError) as caught:
        channel.send(to=TO, message=make_message(), rendered=RENDERED)

    assert caught.value.transient is True
    assert_no_content(caught.value)


def test_email_server_that_never_greets_times_out_as_transient() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((HOST, 0))
        listener.listen(1)  # accepts the TCP connection in the backlog, never says a word
        channel = EmailChannel(host=HOST, port=listener.getsockname()[1], sender=SENDER, timeout=0.5)
        with pytest.raises(DeliveryError) as caught:  # without the timeout this would wait forever
            channel.send(to=TO, message=make_message(), rendered=RENDERED)

    assert caught.value.transient is True


def test_email_recipient_refused_with_550_is_permanent(smtp_server) -> None:
    controller, handler = smtp_server
    channel = EmailChannel(host=HOST, port=controller.port, sender=SENDER, timeout=5)

    with pytest.raises(DeliveryError) as caught:
        channel.send(to="refused@example.org", message=make_message(), rendered=RENDERED)

    assert caught.value.transient is False
    assert caught.value.status == 550
    assert_no_content(caught.value)
    assert handler.received == []


def test_email_recipient_deferred_with_451_is_transient(smtp_server) -> None:
    controller, handler = smtp_server
    channel = EmailChannel(host=HOST, port=controller.port, sender=SENDER, timeout=5)

    with pytest.raises(DeliveryError) as caught:
        channel.send(to="tempfail@example.org", message=make_message(), rendered=RENDERED)

    assert caught.value.transient is True
    assert caught.value.status == 451
    assert handler.received == []


def test_email_header_injection_is_refused_before_connecting() -> None:
    channel = EmailChannel(host=HOST, port=free_port(), sender=SENDER, timeout=1)
    with pytest.raises(DeliveryError) as caught:
        channel.send(to="a@example.org\r\nBcc: b@example.org", message=make_message(), rendered=RENDERED)
    assert caught.value.transient is False


# ------------------------------------------------------------------------------------------ webhooks


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((HOST, 0), WebhookHandler)
        self.requests: list[Request] = []
        self.release = threading.Event()  # lets /slow finish at teardown

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}"


class WebhookHandler(BaseHTTPRequestHandler):
    server: WebhookServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _answer(self, status: int, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:
            pass  # the client gave up (timeout test)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.requests.append(Request(self.path, dict(self.headers.items()), body))
        if self.path == "/hook":
            self._answer(204)
        elif self.path == "/ok200":
            self._answer(200)
        elif self.path == "/fail500":
            self._answer(500)
        elif self.path == "/busy429":
            self._answer(429)
        elif self.path == "/bad400":
            self._answer(400)
        elif self.path == "/gone410":
            self._answer(410)
        elif self.path == "/slow":
            self.server.release.wait(3)
            self._answer(200)
        elif self.path == "/redirect":
            self._answer(302, {"Location": f"{self.server.base}/hook"})
        else:
            self._answer(404)


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    server = WebhookServer()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook-test-server", daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_webhook_is_delivered_signed_with_exactly_the_documented_fields(webhook_server: WebhookServer) -> None:
    message = make_message()
    channel = WebhookChannel(secret=WEBHOOK_SECRET, timeout=5)
    before = int(time.time())

    channel.send(url=f"{webhook_server.base}/hook", message=message)

    assert len(webhook_server.requests) == 1
    req = webhook_server.requests[0]
    headers = {k.lower(): v for k, v in req.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["idempotency-key"] == message.idempotency_key
    assert before - 1 <= int(headers["x-forlop-timestamp"]) <= int(time.time()) + 1
    assert headers["x-forlop-signature"].startswith("sha256=")

    payload = json.loads(req.body)
    assert tuple(payload) == PAYLOAD_FIELDS
    assert set(payload) == {"id", "kind", "case_reference", "step", "due_at", "link", "unit", "count"}
    assert payload == {
        "id": "ntf-0001-due_soon-sakbeh01",
        "kind": "due_soon",
        "case_reference": "TST-2026-0042",
        "step": "K6",
        "due_at": "2026-03-02T08:00:00Z",
        "link": "https://forlop.example.org/cases/TST-2026-0042",
        "unit": "unit-a",
        "count": 1,
    }
    assert req.body == json.dumps(payload, separators=(",", ":")).encode()  # compact
    # nothing about the person or the recipient user
    assert b"sakbeh01\"" not in req.body.replace(b'"ntf-0001-due_soon-sakbeh01"', b"")
    assert b"language" not in req.body and b"recipient" not in req.body


def test_webhook_signature_verifies_only_with_the_secret_and_the_exact_body(webhook_server: WebhookServer) -> None:
    WebhookChannel(secret=WEBHOOK_SECRET, timeout=5).send(url=f"{webhook_server.base}/hook", message=make_message())
    req = webhook_server.requests[0]
    signature = {k.lower(): v for k, v in req.headers.items()}["x-forlop-signature"]

    assert verify_signature(WEBHOOK_SECRET, req.body, signature) is True
    assert verify_signature("another-secret", req.body, signature) is False
    tampered = req.body.replace(b'"count":1', b'"count":2')
    assert tampered != req.body
    assert verify_signature(WEBHOOK_SECRET, tampered, signature) is False
    assert verify_signature(WEBHOOK_SECRET, req.body, signature.removeprefix("sha256=")) is False
    assert verify_signature(WEBHOOK_SECRET, req.body, "sha256=") is False
    assert verify_signature(WEBHOOK_SECRET, req.body, "sha256=æøå") is False
    assert verify_signature("", req.body, signature) is False


def test_webhook_manager_message_has_null_case_fields(webhook_server: WebhookServer) -> None:
    message = make_message(
        "ntf-mgr-unit-a-2026-03-02", kind="manager_escalation", case_reference=None, step_code=None, count=3
    )
    WebhookChannel(secret=WEBHOOK_SECRET).send(url=f"{webhook_server.base}/ok200", message=message)

    payload = json.loads(webhook_server.requests[0].body)
    assert tuple(payload) == PAYLOAD_FIELDS
    assert payload["case_reference"] is None and payload["step"] is None
    assert payload["count"] == 3 and payload["kind"] == "manager_escalation"


@pytest.mark.parametrize(("path", "status"), [("/fail500", 500), ("/busy429", 429)])
def test_webhook_server_errors_are_transient(webhook_server: WebhookServer, path: str, status: int) -> None:
    with pytest.raises(DeliveryError) as caught:
        WebhookChannel(secret=WEBHOOK_SECRET, timeout=5).send(url=webhook_server.base + path, message=make_message())
    assert caught.value.transient is True
    assert caught.value.status == status


@pytest.mark.parametrize(("path", "status"), [("/bad400", 400), ("/gone410", 410), ("/nowhere", 404)])
def test_webhook_client_errors_are_permanent(webhook_server: WebhookServer, path: str, status: int) -> None:
    with pytest.raises(DeliveryError) as caught:
        WebhookChannel(secret=WEBHOOK_SECRET, timeout=5).send(url=webhook_server.base + path, message=make_message())
    assert caught.value.transient is False
    assert caught.value.status == status


def test_webhook_slow_server_times_out_as_transient(webhook_server: WebhookServer) -> None:
    channel = WebhookChannel(secret=WEBHOOK_SECRET, timeout=0.3)
    with pytest.raises(DeliveryError) as caught:  # the server answers 2xx, but only after the timeout
        channel.send(url=f"{webhook_server.base}/slow", message=make_message())
    assert caught.value.transient is True
    assert caught.value.status is None


def test_webhook_redirect_is_not_followed_and_is_permanent(webhook_server: WebhookServer) -> None:
    with pytest.raises(DeliveryError) as caught:
        WebhookChannel(secret=WEBHOOK_SECRET, timeout=5).send(
            url=f"{webhook_server.base}/redirect", message=make_message()
        )
    assert caught.value.transient is False
    assert caught.value.status == 302
    assert [r.path for r in webhook_server.requests] == ["/redirect"]  # /hook was never asked


def test_webhook_connection_refused_is_transient() -> None:
    with pytest.raises(DeliveryError) as caught:
        WebhookChannel(secret=WEBHOOK_SECRET, timeout=2).send(
            url=f"http://{HOST}:{free_port()}/hook", message=make_message()
        )
    assert caught.value.transient is True


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/hook", "file:///etc/passwd", "127.0.0.1:8080/hook", "http:///hook", "javascript:x"]
)
def test_webhook_only_accepts_http_and_https_urls(url: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        WebhookChannel(secret=WEBHOOK_SECRET).send(url=url, message=make_message())
    assert caught.value.transient is False
