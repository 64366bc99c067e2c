"""Helpers for the delivery and scheduler-process tests: local servers on 127.0.0.1, the ``forlop`` command as a
real process, synthetic cases and an independent count of the reminders a scan should raise.

Only synthetic data: pseudonymous references, example.invalid addresses, made-up secrets.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pathway import services
from pathway.bootstrap import Forlop
from pathway.reminders import HANDOVER_UNACCEPTED, MANAGER, rung_times
from pathway.store.tables import case_t, handover_t, step_t
from tests.suite import processes

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]
UNIT = "testenhet"
WEBHOOK_SECRET = "synthetic-webhook-secret-0123456789"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# -- webhooks ---------------------------------------------------------------------------------------------


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int | None = None  # the status we answered with (None: never answered, e.g. the client died)

    @property
    def key(self) -> str | None:
        return self.headers.get("idempotency-key")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A real HTTP server that records every POST. ``status`` may be changed while it runs; with
    ``hang_first`` the first request is recorded and then answered only after that many seconds
    (or at ``stop``), so a test can kill the sender while the request is in flight; ``delay`` slows every answer."""

    status: int = 200
    hang_first: float = 0.0
    delay: float = 0.0  # seconds before answering each request (a slow receiver)
    requests: list[Request] = field(default_factory=list)
    first_arrived: threading.Event = field(default_factory=threading.Event)
    _release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{HOST}:{self._server.server_address[1]}/hook"

    def keys(self) -> list[str | None]:
        with self._lock:
            return [r.key for r in self.requests]

    def snapshot(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver._lock:
                    first = not receiver.requests
                    receiver.requests.append(request)
                if first and receiver.hang_first:
                    receiver.first_arrived.set()
                    receiver._release.wait(receiver.hang_first)
                elif receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.status
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    request.answered = status
                except OSError:  # the sender is gone (killed while we hung)
                    pass
                self.close_connection = True

            def log_message(self, *_: object) -> None:  # keep the test output quiet
                pass

        server = ThreadingHTTPServer((HOST, 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@contextmanager
def webhook_receiver(**kw: Any) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(**kw).start()
    try:
        yield receiver
    finally:
        receiver.stop()


# -- email ------------------------------------------------------------------------------------------------


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    content: bytes


class MailSink:
    """aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        with self._lock:
            self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content
                                                                                       or envelope.content)))
        return "250 OK"

    def snapshot(self) -> list[Mail]:
        with self._lock:
            return list(self.mails)


@contextmanager
def smtp_server() -> Iterator[tuple[MailSink, int]]:
    from aiosmtpd.controller import Controller

    sink = MailSink()
    port = free_port()
    controller = Controller(sink, hostname=HOST, port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


# -- the forlop command as a process ----------------------------------------------------------------------


def forlop_argv(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "forlop"
    if script.exists():
        return [str(script), *args]
    found = shutil.which("forlop")
    if found:
        return [found, *args]
    return [sys.executable, "-c", "from pathway.cli import main; main()", *args]


def forlop_env(database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a ``forlop`` process: nothing inherited from FORLOP_*, test settings, our database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORLOP_") and k != "DATABASE_URL"}
    env.update({
        "FORLOP_ENV": "test",
        "FORLOP_DATABASE_URL": database_url,
        "FORLOP_DEFINITIONS_DIR": str(ROOT / "definitions"),
        "FORLOP_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "COLUMNS": "250",  # rich tables: room for whole UUIDs
        "PYTHONUNBUFFERED": "1",
    })
    env.update(overrides)
    return env


def run_forlop(*args: str, database_url: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(forlop_argv(*args), env=forlop_env(database_url, **env), capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def popen_forlop(*args: str, database_url: str, **env: str) -> subprocess.Popen[str]:
    return processes.spawn(forlop_argv(*args), env=forlop_env(database_url, **env), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=ROOT)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    """Make sure a process we started, and every process of its group, is gone (used in ``finally``)."""
    processes.end(proc, timeout=timeout)


def wait_until(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# -- synthetic cases ----------------------------------------------------------------------------------------


def add_user(core: Forlop, username: str, role: str = "coordinator", **kw: Any) -> None:
    if role in ("coordinator", "manager"):
        kw.setdefault("unit", UNIT)
    services.add_user(engine=core.engine, username=username, role=role, **kw)


def open_case(core: Forlop, first_contact: datetime, **kw: Any) -> str:
    return services.open_case(
        uow=core.uow(), pathway_id="krisesenter", unit=UNIT, first_contact_at=first_contact, actor="k1",
        keys=core.keys, index_key=core.settings.index_key, reference_prefix="TST", at=first_contact, **kw).reference


def expected_reminders(core: Forlop, now: datetime, *, told: bool = False) -> int:
    """How many reminders one scan at ``now`` must have raised over the life of these cases, worked out from the
    steps and the definitions' ladders (``rung_times``), not from anything a scan wrote. Valid for cases without
    handovers (the handover rung is raised only while a handover waits). ``told``: only those told one by one, not
    the rungs addressed to the managers (they hear of those in the daily digest)."""
    with core.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(handover_t)).scalar_one() == 0
        steps = conn.execute(
            sa.select(step_t.c.code, step_t.c.due_at, step_t.c.adhoc, case_t.c.pathway_id, case_t.c.definition_version)
            .join(case_t, case_t.c.id == step_t.c.case_id)
            .where(step_t.c.ended_at.is_(None), step_t.c.due_at.is_not(None))).all()
    total = 0
    for s in steps:
        definition = core.catalog.resolve(s.pathway_id, s.definition_version)
        total += sum(1 for r in rung_times(definition, s.code, s.due_at, adhoc=s.adhoc)
                     if r.kind != HANDOVER_UNACCEPTED and r.at <= now and not (told and r.to == MANAGER))
    return total
