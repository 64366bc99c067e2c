"""Helpers of the fault suite: the real server (``forlop serve --workers N``) as a process, a private PostgreSQL
cluster that a test may stop, client threads that complete checkpoints through the API, and the database's own
account of what was written.

Only synthetic data: the demo users (password "demo") and cases without person records.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from pathway import services
from pathway.bootstrap import Forlop
from pathway.demo import DEMO_PASSWORD, seed_demo
from pathway.store.tables import case_t, event_t, step_t
from tests.suite import processes
from tests.integration.support import (
    HOST,
    ROOT,
    forlop_argv,
    forlop_env,
    free_port,
    run_forlop,
    stop_process,
    wait_until,
)

UNIT = "bergen-sentrum"  # the demo coordinator's unit
# The checkpoints of a fresh case (with children) that are completed by hand, each once (K12 repeats: only its
# first occurrence); K3, K4 and K13 are completed by other operations.
BY_HAND = ("K1", "K2", "K5", "K12")
API = "/api/v1"
CLIENT_TIMEOUT = 60.0  # a request that hangs shows as a timeout error, which the tests count as a failure
PROBLEM = "application/problem+json"


def say(text: str) -> None:
    """A figure for the closing note (``make resilience``, i.e. ``pytest -rP``, lists it under each test)."""
    print("\n" + text, flush=True)


# -- the world ------------------------------------------------------------------------------------------------


def seed_world(core: Forlop, *, cases: int) -> list[str]:
    """The demo users (``forlop demo``'s, password "demo") and ``cases`` fresh cases of the demo coordinator's unit,
    with children, so that each has the four checkpoints ``BY_HAND`` to complete."""
    seed_demo(core, cases=0, seed=2026)
    now = datetime.now(timezone.utc)
    return [services.open_case(
        uow=core.uow(), pathway_id="krisesenter", unit=UNIT, first_contact_at=now, actor="koordinator",
        keys=core.keys, index_key=core.settings.index_key, reference_prefix=core.settings.reference_prefix,
        conditions=["children"], at=now).reference for _ in range(cases)]


def add_coordinator(core: Forlop, username: str) -> None:
    """A second coordinator of the demo unit, with the demo password."""
    from pathway.accounts import set_password

    services.add_user(engine=core.engine, username=username, role="coordinator", unit=UNIT)
    set_password(core.engine, username, DEMO_PASSWORD)


# -- the server as a process ------------------------------------------------------------------------------------


@dataclass
class Server:
    """``forlop serve`` running as a real process (a supervisor and its worker processes)."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    workers_wanted: int

    def workers(self) -> list[int]:
        """The live worker processes (uvicorn's supervisor starts them with multiprocessing's spawn)."""
        if self.workers_wanted == 1:
            return [self.proc.pid] if self.proc.poll() is None else []
        return [p for p in processes.children(self.proc.pid) if "spawn_main" in processes.cmdline(p)]

    def serving(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def started(self) -> int:
        """How many workers have started serving so far (replacements included)."""
        return self.log_text().count("Application startup complete")

    def kill_worker(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)

    def sign_in(self, username: str, password: str = DEMO_PASSWORD) -> str:
        r = httpx.post(self.url + API + "/auth/token", data={"username": username, "password": password}, timeout=30)
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def api_server(database_url: str, *, workers: int = 2, log_dir: Path, **env: str) -> Iterator[Server]:
    """Start ``forlop serve --workers N`` on a free port (scheduler off) and wait until every worker serves."""
    port = free_port()
    log = log_dir / f"serve-{port}.log"
    with open(log, "wb") as out:  # a file, not a pipe: a pipe nobody reads fills up and stalls the server
        proc = processes.spawn(
            forlop_argv("serve", "--workers", str(workers), "--host", HOST, "--port", str(port)),
            env=forlop_env(database_url, FORLOP_SCHEDULER="off", **env), stdout=out, stderr=subprocess.STDOUT,
            cwd=ROOT)
    server = Server(proc, f"http://{HOST}:{port}", log, workers)
    try:
        started = wait_until(lambda: proc.poll() is not None or (
            len(server.workers()) == workers and server.started() >= workers
            and server.serving()), timeout=120)
        assert started and proc.poll() is None, f"the server did not start:\n{server.log_text()[-3000:]}"
        yield server
    finally:
        stop_process(proc)  # the supervisor's whole group: its workers and multiprocessing's resource tracker


# -- a private PostgreSQL cluster --------------------------------------------------------------------------------

PG_BIN = Path(os.environ.get("FORLOP_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


class PrivateCluster:
    """A PostgreSQL cluster of its own (initdb in a temporary directory, a free port), so that a test may stop and
    start it without touching the shared server. initdb refuses to run as root: as root, it runs as ``postgres``."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="forlop-pg-"))  # not under pytest's tmp: postgres must reach it
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [*(["runuser", "-u", "postgres", "--"] if self.as_postgres else []), *argv]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stdout[-1000:]} {done.stderr[-2000:]}")
        return done

    def init(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses={HOST} -c fsync=off -c max_connections=100"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-o", options, "-w",
                  "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        admin = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return self.url(name)

    def remove(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


# -- clients that complete checkpoints ------------------------------------------------------------------------------


@dataclass
class Attempt:
    """One HTTP request as the client saw it."""

    what: str  # "read" or "complete"
    at: float  # time.monotonic() when it was sent
    took: float
    status: int | None  # None: no answer (the connection was cut, or the client timed out)
    content_type: str = ""
    problem: str | None = None  # the problem type of an error answer
    error: str | None = None  # the client's exception, when there was no answer


@dataclass
class Intent:
    """One intended change (complete a step at a version) and every attempt to make it."""

    ref: str
    code: str
    occurrence: int
    version: int
    key: str | None
    attempts: list[Attempt] = field(default_factory=list)
    answered_version: int | None = None  # the version a 2xx answer gave
    applied: bool | None = None  # what the case showed afterwards, when no 2xx came

    @property
    def acknowledged(self) -> bool:
        return self.answered_version is not None


class CompletionStream:
    """Client threads, each with its own cases (so they never race each other), completing the cases' active
    checkpoints one after another through the API with ``If-Match``. With ``retry``, an answer of 503 or a cut
    connection is retried with the same Idempotency-Key and version; without, the client moves on and later reads
    the case to learn whether the change was applied."""

    def __init__(self, base_url: str, token: str, refs: list[str], *, threads: int, retry: bool = False,
                 retry_delay: float = 0.2, think: float = 0.0) -> None:
        self.base_url = base_url
        self.think = think  # seconds between one client's changes
        self.limit: int | None = None  # the clients wait while this many changes are acknowledged (None: no limit)
        self.token = token
        self.slices = [refs[i::threads] for i in range(threads)]
        self.retry = retry
        self.retry_delay = retry_delay
        self.intents: list[Intent] = []
        self.attempts: list[Attempt] = []
        self.surprises: list[str] = []  # answers that no fault explains
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(s,), daemon=True) for s in self.slices]

    # -- the figures

    def acknowledged(self) -> int:
        with self._lock:
            return sum(i.acknowledged for i in self.intents)

    def snapshot(self) -> tuple[list[Intent], list[Attempt]]:
        with self._lock:
            return list(self.intents), list(self.attempts)

    # -- running

    def start(self) -> CompletionStream:
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float = 120) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self._threads), "a client thread did not stop"

    def finished(self) -> bool:
        return not any(t.is_alive() for t in self._threads)

    def _request(self, client: httpx.Client, what: str, method: str, url: str, **kw: Any) -> tuple[Attempt, Any]:
        started = time.monotonic()
        try:
            r = client.request(method, url, **kw)
        except httpx.TransportError as exc:  # a cut connection, a refused one, or a client timeout
            attempt = Attempt(what, started, time.monotonic() - started, None, error=type(exc).__name__)
            body = None
        else:
            content_type = r.headers.get("content-type", "")
            body = r.json() if "json" in content_type else None
            attempt = Attempt(what, started, time.monotonic() - started, r.status_code, content_type,
                              body.get("type") if r.status_code >= 400 and isinstance(body, dict) else None)
        with self._lock:
            self.attempts.append(attempt)
        return attempt, body

    def _read(self, client: httpx.Client, ref: str) -> dict[str, Any] | None:
        """The case as the API shows it; through outages and restarts, until the stream is stopped."""
        while not self._stop.is_set():
            attempt, body = self._request(client, "read", "GET", f"{API}/cases/{ref}")
            if attempt.status == 200:
                return body  # type: ignore[no-any-return]
            if attempt.status is not None and attempt.status != 503:
                self._surprise(f"GET {ref}: {attempt.status} {attempt.problem}")
                return None
            time.sleep(self.retry_delay)
        return None

    def _surprise(self, text: str) -> None:
        with self._lock:
            self.surprises.append(text)

    def _run(self, refs: list[str]) -> None:
        with httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.token}"},
                          timeout=CLIENT_TIMEOUT) as client:
            for ref in refs:
                pending: Intent | None = None
                while not self._stop.is_set():
                    case = self._read(client, ref)
                    if case is None:
                        break
                    if pending is not None:  # the last change got no 2xx: what happened to it?
                        self._resolve(pending, case)
                        pending = None
                    step = next((s for s in case["steps"] if s["state"] == "active" and s["code"] in BY_HAND
                                 and s["occurrence"] == 1), None)
                    if step is None:
                        break
                    self._stop.wait(self.think)
                    while self.limit is not None and self.acknowledged() >= self.limit and not self._stop.is_set():
                        self._stop.wait(0.02)
                    intent = self._complete(client, case, step)
                    last = intent.attempts[-1]
                    if intent.acknowledged:
                        continue
                    if last.status is not None and last.status != 503 and len(intent.attempts) == 1:
                        self._surprise(f"{ref}: completing {step['code']} answered {last.status} {last.problem}")
                        break
                    pending = intent
                if pending is not None and not self._stop.is_set():
                    self._surprise(f"{ref}: the outcome of completing {pending.code} was never learned")

    def _complete(self, client: httpx.Client, case: dict[str, Any], step: dict[str, Any]) -> Intent:
        intent = Intent(case["reference"], step["code"], step["occurrence"], case["version"],
                        str(uuid.uuid4()) if self.retry else None)
        with self._lock:
            self.intents.append(intent)
        headers = {"If-Match": f'"{intent.version}"'}
        if intent.key:
            headers["Idempotency-Key"] = intent.key
        while True:
            attempt, body = self._request(client, "complete", "POST",
                                          f"{API}/cases/{intent.ref}/steps/{intent.code}/complete",
                                          headers=headers, json={"note": "testnotat"})
            intent.attempts.append(attempt)
            if attempt.status is not None and 200 <= attempt.status < 300:
                intent.answered_version = int(body["version"])
                return intent
            retryable = attempt.status is None or attempt.status == 503
            if not (self.retry and retryable) or self._stop.is_set():
                return intent
            time.sleep(self.retry_delay)

    def _resolve(self, intent: Intent, case: dict[str, Any]) -> None:
        """Only this thread changes this case: the step is done and the version one up exactly if it was applied."""
        step = next(s for s in case["steps"] if s["code"] == intent.code and s["occurrence"] == intent.occurrence)
        done = step["state"] == "done"
        intent.applied = done
        if case["version"] != intent.version + (1 if done else 0):
            self._surprise(f"{intent.ref}: version {case['version']} after completing {intent.code} at "
                           f"{intent.version} (step {step['state']})")


# -- what the database says ---------------------------------------------------------------------------------------


@dataclass
class Ledger:
    cases: int
    events: int
    half_applied: list[str]  # cases whose version, events and steps disagree
    missing: list[str]  # acknowledged changes the database does not have
    completed_twice: list[str]  # a step completed by more than one event


def ledger(core: Forlop, intents: list[Intent]) -> Ledger:
    """Check the database against what the clients were told: every acknowledged change is there (the event at
    the answered version completes that step, and the step is done), no case is half-written (its version is its
    event count and its last event's number; every step done by hand has exactly one completion), nothing twice."""
    with core.engine.connect() as conn:
        cases = {r.id: r for r in conn.execute(sa.select(case_t.c.id, case_t.c.reference, case_t.c.version))}
        counts = {r.case_id: (r.n, r.top) for r in conn.execute(
            sa.select(event_t.c.case_id, sa.func.count().label("n"), sa.func.max(event_t.c.seq).label("top"))
            .group_by(event_t.c.case_id))}
        completions = conn.execute(sa.select(event_t.c.case_id, event_t.c.seq, event_t.c.payload)
                                   .where(event_t.c.operation == "complete")).all()
        steps = conn.execute(sa.select(step_t.c.case_id, step_t.c.code, step_t.c.occurrence, step_t.c.state,
                                       step_t.c.ended_by)).all()
    ref_of = {cid: r.reference for cid, r in cases.items()}
    completed = Counter((c.case_id, c.payload["code"]) for c in completions)
    event_at = {(ref_of[c.case_id], c.seq): c.payload["code"] for c in completions}
    state = {(ref_of[s.case_id], s.code, s.occurrence): s.state for s in steps}

    half = {r.reference for cid, r in cases.items() if counts.get(cid) != (r.version, r.version)}
    # As many steps of a code done by hand as there are completion events of that code (K0, done when the case
    # opens, and the steps done by other operations have none).
    done = Counter((s.case_id, s.code) for s in steps if s.state == "done" and s.code in BY_HAND)
    half |= {ref_of[cid] for cid, code in set(done) | set(completed) if done[cid, code] != completed[cid, code]}
    twice = sorted(f"{ref_of[cid]} {code}" for (cid, code), n in completed.items() if n > 1)
    missing = [f"{i.ref} {i.code}@{i.answered_version}" for i in intents if i.acknowledged and (
        event_at.get((i.ref, i.answered_version)) != i.code or state.get((i.ref, i.code, i.occurrence)) != "done")]
    return Ledger(len(cases), sum(n for n, _ in counts.values()), sorted(half), missing, twice)


def audit_verify(database_url: str) -> tuple[int, str]:
    """``forlop audit verify`` (chains and replay) as its own process: exit code and summary line."""
    done = run_forlop("audit", "verify", database_url=database_url, timeout=300)
    return done.returncode, (done.stderr.strip().splitlines() or [""])[-1] + done.stdout[-2000:]


def statuses(attempts: list[Attempt]) -> str:
    """``200×120, 503×14, no answer×2`` (problem types in brackets)."""
    seen = Counter(("no answer" if a.status is None else str(a.status))
                   + (f" [{a.problem}]" if a.problem else "") for a in attempts)
    return ", ".join(f"{k}×{n}" for k, n in sorted(seen.items())) or "none"
