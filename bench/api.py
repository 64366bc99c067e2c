#!/usr/bin/env python
"""HTTP API benchmark: the real server (``forlop serve --workers N``) on PostgreSQL under 1, 8 and 32 clients.

Run from the repository root (``.venv/bin/python bench/api.py``; ``--quick`` for a smoke run). It prints
figures and never asserts on time. In one run:

1. Builds a data set in its own PostgreSQL database (``forlop_bench_api``, dropped at the end): one coordinator
   with a password in one unit and ``--cases`` open cases of that unit, opened one by one through
   ``services.open_case`` (first contacts spread over the last two weeks, so some are overdue and the list has
   a real order to sort by).
2. Starts the server as real processes: ``forlop serve --workers N --host 127.0.0.1 --port <free port>`` with
   FORLOP_SCHEDULER=off and FORLOP_ENV=test, waits for ``/readyz`` and for every worker to report that it
   started, and signs in once (``POST /api/v1/auth/token``).
3. For each client count (default 1, 8, 32), each for ``--duration`` seconds, closed-loop clients (asyncio +
   one keep-alive connection per client) measure requests/s and p50/p99 latency of
   (a) ``GET /healthz`` (the framework's floor), (b) ``GET /api/v1/cases?limit=50`` (the coordinator's first
   page) and (c) ``POST /api/v1/cases/{ref}/steps/K1/complete`` with ``If-Match: "<version>"``, each request on
   its own case (K1 of a fresh case, then K2 of a case whose K1 is done; 409s are counted apart). Alongside: CPU
   used by the client, by the server processes, by the database's backends and by the rest of the machine, and
   PostgreSQL's commits and inserted rows per request.
4. Stops the server with SIGTERM (timing the clean shutdown) and drops the database.

The client shares the machine with the server and the database, so its own CPU use is printed too:
``--client raw`` (a minimal HTTP/1.1 client on asyncio streams) costs far less per request than
``--client httpx`` (httpx.AsyncClient, the default) and leaves more of the CPUs to the server.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cleanup  # noqa: E402
from bench.cleanup import Made  # noqa: E402
from pathway import services  # noqa: E402
from pathway.accounts import set_password  # noqa: E402
from pathway.bootstrap import bootstrap  # noqa: E402
from pathway.settings import Settings  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DB_NAME = "forlop_bench_api"
UNIT = "bergen-sentrum"
USERNAME = "bench-koordinator"
PASSWORD = "bench-passord-123"
PATHWAY = "krisesenter"
HOST = "127.0.0.1"
MAX_REQUESTS_PER_CLIENT = 1_000_000  # a bound on every measurement loop besides its duration
SPREAD = timedelta(days=14)  # first contacts spread over this span before now
NOTE = b'{"note": "benchmark: gjort (etter fristen for de fleste)"}'  # a late completion needs a note


# -- small helpers ---------------------------------------------------------------------------------------------


def say(text: str = "") -> None:
    print(text, flush=True)


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def pct(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def ms(seconds: float) -> str:
    return "n/a" if seconds != seconds else f"{seconds * 1e3:.2f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, indent: str = "  ") -> str:
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def numeric(cell: str) -> bool:
        return cell[:1].isdigit() or cell[:1] in "-≤×" or cell in ("", "n/a")

    left = {0} | {i for i in range(len(headers)) if not all(numeric(r[i]) for r in rows)}

    def line(cells: Sequence[str]) -> str:
        return indent + "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(headers), indent + "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# -- CPU accounting (Linux /proc; figures are n/a elsewhere) ---------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_busy() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot."""
    try:
        with open("/proc/stat") as f:
            parts = [float(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0.0)  # idle + iowait
    return (sum(parts) - idle) / _TICK, sum(parts) / _TICK


def _proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (float(fields[11]) + float(fields[12])) / _TICK  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0.0


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                kids.append(int(entry))
    return kids


class CpuMeter:
    """CPU seconds over a window: this process (the client), the server (supervisor + workers), the PostgreSQL
    backends connected to the bench database, and the whole machine ("other" = everything else running)."""

    def __init__(self, server_pids: list[int], db: Database) -> None:
        self.server_pids = server_pids
        self.db = db

    def snapshot(self) -> dict[str, Any]:
        pg_pids = self.db.backend_pids()
        return {"wall": time.perf_counter(), "client": time.process_time(),
                "server": sum(_proc_cpu(p) for p in self.server_pids),
                "pg": {p: _proc_cpu(p) for p in pg_pids}, "machine": _machine_busy()}

    @staticmethod
    def delta(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
        wall = b["wall"] - a["wall"]
        out = {"client": (b["client"] - a["client"]) / wall, "server": (b["server"] - a["server"]) / wall,
               # backends that started during the window count from zero; those that ended are lost (the
               # server's pools keep theirs open, so that is rare)
               "pg": sum(cpu - a["pg"].get(pid, 0.0) for pid, cpu in b["pg"].items()) / wall}
        if a["machine"] and b["machine"]:
            busy, total = b["machine"][0] - a["machine"][0], b["machine"][1] - a["machine"][1]
            cpus = os.cpu_count() or 1
            out["machine"] = busy / total * cpus if total > 0 else float("nan")
        else:
            out["machine"] = float("nan")
        out["other"] = out["machine"] - out["client"] - out["server"] - out["pg"]
        return out


# -- the database ------------------------------------------------------------------------------------------------


class Database:
    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.url = sa.engine.make_url(admin_url).set(database=DB_NAME).render_as_string(hide_password=False)

    def create(self, made: Made) -> None:
        """The bench database, new (one left by an earlier run is dropped first); ``made`` drops it at the end."""
        made.database(self.admin_url, DB_NAME)

    def close(self) -> None:
        self.admin.dispose()

    def backend_pids(self) -> list[int]:
        with self.admin.connect() as conn:
            return list(conn.execute(sa.text("SELECT pid FROM pg_stat_activity WHERE datname = :d"),
                                     {"d": DB_NAME}).scalars())

    def stats(self) -> dict[str, int]:
        """Cumulative counters of the bench database (flushed by backends about once a second)."""
        with self.admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
            row = conn.execute(sa.text(
                "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_fetched, blks_read, blks_hit, sessions "
                "FROM pg_stat_database WHERE datname = :d"), {"d": DB_NAME}).mappings().one()
        return dict(row)


def build_data_set(url: str, cases: int) -> tuple[list[str], dict[str, float]]:
    """A coordinator with a password, and ``cases`` open cases of its unit, opened through the services."""
    started = time.perf_counter()
    core = bootstrap(Settings(env="test", database_url=url, scheduler="off"))
    migrated = time.perf_counter() - started

    # Only the data set's own connections skip the wait for the WAL flush at commit; the server measured later
    # runs with the database's settings (synchronous_commit as printed above).
    @sa.event.listens_for(core.engine, "connect")
    def _no_flush_wait(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SET synchronous_commit = off")
        dbapi_conn.commit()

    core.engine.dispose()
    try:
        services.add_user(engine=core.engine, username=USERNAME, role="coordinator", unit=UNIT)
        set_password(core.engine, USERNAME, PASSWORD)
        now = datetime.now(timezone.utc)
        step = SPREAD / max(cases, 1)
        refs: list[str] = []
        t = time.perf_counter()
        last_note = t
        for i in range(cases):
            at = now - SPREAD + i * step  # recorded when it happened: no backdating, no reason needed
            case = services.open_case(
                uow=core.uow(), pathway_id=PATHWAY, unit=UNIT, first_contact_at=at, actor="mottak",
                keys=core.keys, index_key=core.settings.index_key, reference_prefix=core.settings.reference_prefix,
                conditions=["shelter_stay"], at=at)
            refs.append(case.reference)
            if time.perf_counter() - last_note >= 5 or i + 1 == cases:
                last_note = time.perf_counter()
                rate = (i + 1) / (last_note - t)
                note(f"  opened {i + 1:,}/{cases:,} cases ({rate:,.0f}/s, ~{(cases - i - 1) / rate:.0f} s left)")
        opening = time.perf_counter() - t
        with core.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE)")
            conn.exec_driver_sql("CHECKPOINT")
    finally:
        core.close()
    return refs, {"migrate": migrated, "open": opening, "total": time.perf_counter() - started}


# -- the server --------------------------------------------------------------------------------------------------


class Server:
    def __init__(self, made: Made, url: str, workers: int, port: int, logdir: str, command: str | None = None) -> None:
        self.port = port
        self.workers = workers
        self.log_path = Path(logdir) / "server.log"
        self.base = f"http://{HOST}:{port}"
        if command:
            base = shlex.split(command)
        else:
            forlop = Path(sys.executable).parent / "forlop"
            base = [str(forlop), "serve"] if forlop.exists() else [sys.executable, "-m", "pathway.cli", "serve"]
        self.command = [*base, "--workers", str(workers), "--host", HOST, "--port", str(port)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORLOP_") and k != "DATABASE_URL"}
        env.update(FORLOP_DATABASE_URL=url, FORLOP_ENV="test", FORLOP_SCHEDULER="off")
        self.log = open(self.log_path, "wb")
        # In a session of its own: a Ctrl-C in the terminal reaches only this benchmark, which stops the server
        # with SIGTERM below (and ``made`` kills its process group, workers too, whatever happens).
        self.proc = made.spawn(self.command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
        self.stopped: dict[str, Any] = {}

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 90.0) -> float:
        started = time.perf_counter()
        deadline = started + timeout
        with httpx.Client(base_url=self.base, timeout=2.0) as client:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
                try:
                    ready = client.get("/readyz").status_code == 200
                except httpx.HTTPError:
                    ready = False
                if ready and self.log_text().count("Application startup complete") >= self.workers:
                    return time.perf_counter() - started
                time.sleep(0.2)
        raise RuntimeError(f"the server was not ready within {timeout:.0f} s:\n{self.log_text()[-3000:]}")

    def pids(self) -> list[int]:
        return [self.proc.pid, *_children(self.proc.pid)]

    def stop(self, timeout: float = 30.0) -> dict[str, Any]:
        if self.proc.poll() is None:
            started = time.perf_counter()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
                self.stopped = {"signal": "SIGTERM", "seconds": time.perf_counter() - started,
                                "exit": self.proc.returncode}
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the supervisor and its workers
                self.proc.wait(timeout=10)
                self.stopped = {"signal": "SIGKILL after SIGTERM timed out", "seconds": timeout,
                                "exit": self.proc.returncode}
        self.log.close()
        return self.stopped


# -- clients -----------------------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class RawConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: the least client-side cost per request."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Response:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        hdrs = {}
        for h in header_lines:
            if h:
                k, _, v = h.partition(":")
                hdrs[k.strip().lower()] = v.strip()
        if "content-length" in hdrs:
            data = await self.reader.readexactly(int(hdrs["content-length"]))
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunks.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            data = b"".join(c[:-2] for c in chunks)
        else:
            data = await self.reader.read()
            hdrs["connection"] = "close"
        if hdrs.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, hdrs, data)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


class HttpxConnection:
    """httpx.AsyncClient with one keep-alive connection."""

    def __init__(self, port: int) -> None:
        self.client = httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=60.0,
                                        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Response:
        r = await self.client.request(method, path, headers=headers, content=body or None)
        return Response(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)

    async def close(self) -> None:
        await self.client.aclose()


# -- the work --------------------------------------------------------------------------------------------------


class CompletionWork:
    """Fresh (case, checkpoint, version) triples so that no two requests touch the same case: K1 of a fresh
    case (version 1), and K2 of a case whose K1 is done (at the version the K1 answer gave)."""

    def __init__(self, refs: list[str]) -> None:
        self.fresh = collections.deque(refs)
        self.second: collections.deque[tuple[str, str, int]] = collections.deque()
        self.used_cases = 0
        self.exhausted = False

    def take(self) -> tuple[str, str, int] | None:
        if self.second:
            return self.second.popleft()
        if self.fresh:
            self.used_cases += 1
            return self.fresh.popleft(), "K1", 1
        self.exhausted = True
        return None

    def done(self, ref: str, code: str, response: Response) -> None:
        if code == "K1" and response.status == 200:
            etag = response.headers.get("etag", "").strip('"')
            if etag.isdigit():
                self.second.append((ref, "K2", int(etag)))


@dataclass
class Result:
    name: str
    clients: int
    latencies: list[float] = field(default_factory=list)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    pg: dict[str, int] = field(default_factory=dict)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)  # transport errors
    samples: dict[int, str] = field(default_factory=dict)  # the first answer body of each error status
    note: str = ""

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.count / self.wall if self.wall else float("nan")


ENDPOINTS = ("healthz", "list", "complete")
LABELS = {"healthz": "GET /healthz", "list": "GET /api/v1/cases?limit=50",
          "complete": "POST .../steps/{K1|K2}/complete"}


async def _client_loop(kind: str, conn: Any, token: str, work: CompletionWork, result: Result, end: float,
                       record: bool) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    perf = time.perf_counter
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        if perf() >= end:
            return
        item = None
        if kind == "healthz":
            method, path, headers, body = "GET", "/healthz", {}, b""
        elif kind == "list":
            method, path, headers, body = "GET", "/api/v1/cases?limit=50", auth, b""
        else:
            item = work.take()
            if item is None:
                return
            ref, code, version = item
            method, path, body = "POST", f"/api/v1/cases/{ref}/steps/{code}/complete", NOTE
            headers = {**auth, "If-Match": f'"{version}"', "Content-Type": "application/json"}
        s = perf()
        try:
            response = await conn.request(method, path, headers, body)
        except (OSError, asyncio.IncompleteReadError, httpx.HTTPError) as exc:
            result.errors[type(exc).__name__] += 1
            await conn.close()
            continue
        took = perf() - s
        if item is not None:
            work.done(item[0], item[1], response)
        if record:
            result.latencies.append(took)
            result.statuses[response.status] += 1
            if response.status >= 400 and response.status not in result.samples:
                result.samples[response.status] = response.body[:160].decode(errors="replace")


async def measure(kind: str, clients: int, seconds: float, *, port: int, token: str, work: CompletionWork,
                  client_kind: str, meter: CpuMeter | None, db: Database | None, record: bool = True) -> Result:
    result = Result(kind, clients)
    conns = [(RawConnection(port) if client_kind == "raw" else HttpxConnection(port)) for _ in range(clients)]
    try:
        # Open the connections first (one cheap request each), so connection set-up is not timed.
        await asyncio.gather(*(c.request("GET", "/healthz", {}) for c in conns))
        pg0 = db.stats() if db is not None else None
        cpu0 = meter.snapshot() if meter is not None else None
        start = time.perf_counter()
        await asyncio.gather(*(_client_loop(kind, c, token, work, result, start + seconds, record) for c in conns))
        result.wall = time.perf_counter() - start
        if meter is not None and cpu0 is not None:
            result.cpu = meter.delta(cpu0, meter.snapshot())
        if db is not None and pg0 is not None:
            await asyncio.sleep(1.1)  # backends flush their counters about once a second
            pg1 = db.stats()
            result.pg = {k: pg1[k] - pg0[k] for k in pg0}
    finally:
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
    if kind == "complete" and work.exhausted:
        result.note = "ran out of fresh cases before the time was up"
    return result


def sign_in(base: str) -> str:
    with httpx.Client(base_url=base, timeout=30.0) as client:
        r = client.post("/api/v1/auth/token", data={"username": USERNAME, "password": PASSWORD})
        r.raise_for_status()
        return str(r.json()["access_token"])


def check_answers(base: str, token: str, work: CompletionWork) -> list[str]:
    """Plain correctness of what is measured: the list has 50 items of the unit; a completion bumps the version."""
    problems = []
    with httpx.Client(base_url=base, timeout=30.0, headers={"Authorization": f"Bearer {token}"}) as client:
        r = client.get("/api/v1/cases", params={"limit": 50})
        items = r.json().get("items", []) if r.status_code == 200 else []
        if r.status_code != 200 or len(items) != 50 or any(i["unit"] != UNIT for i in items):
            problems.append(f"list: {r.status_code}, {len(items)} items")
        item = work.take()
        if item is not None:
            ref, code, version = item
            r = client.post(f"/api/v1/cases/{ref}/steps/{code}/complete", content=NOTE,
                            headers={"If-Match": f'"{version}"', "Content-Type": "application/json"})
            if r.status_code != 200 or r.headers.get("etag") != f'"{version + 1}"':
                problems.append(f"complete {ref} {code}: {r.status_code} {r.text[:200]}")
            work.done(ref, code, Response(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content))
            stale = client.post(f"/api/v1/cases/{ref}/steps/K2/complete", content=NOTE,
                                headers={"If-Match": f'"{version}"', "Content-Type": "application/json"})  # the old version: must be refused
            if stale.status_code != 409:
                problems.append(f"stale version: expected 409, got {stale.status_code}")
    return problems


# -- reporting --------------------------------------------------------------------------------------------------


def _pct_cpu(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value * 100:.0f}%"


def report(results: dict[tuple[str, int], Result], clients: list[int]) -> None:
    for n in clients:
        base = results.get(("healthz", n))
        say(f"\n== {n} client{'s' if n != 1 else ''} ==")
        rows = []
        for kind in ENDPOINTS:
            r = results.get((kind, n))
            if r is None:
                continue
            p50, p99 = pct(r.latencies, 50), pct(r.latencies, 99)
            other = sum(c for s, c in r.statuses.items() if not (200 <= s < 300) and s != 409)
            vs = "1.00" if kind == "healthz" or base is None else f"{base.rps / r.rps:.2f}" if r.rps else "n/a"
            vs50 = ("1.00" if kind == "healthz" or base is None else
                    f"{p50 / pct(base.latencies, 50):.1f}" if base.latencies else "n/a")
            per = max(r.count, 1)
            rows.append([LABELS[kind], f"{r.count:,}", f"{r.rps:,.0f}", ms(p50), ms(p99), vs, vs50,
                         f"{r.statuses.get(409, 0):,}", f"{other + sum(r.errors.values()):,}",
                         _pct_cpu(r.cpu.get("client")), _pct_cpu(r.cpu.get("server")), _pct_cpu(r.cpu.get("pg")),
                         _pct_cpu(r.cpu.get("other")), _pct_cpu(r.cpu.get("machine")),
                         f"{r.pg.get('xact_commit', 0) / per:.2f}" if r.pg else "n/a",
                         f"{r.pg.get('tup_inserted', 0) / per:.2f}" if r.pg else "n/a",
                         f"{r.pg.get('sessions', 0) / r.wall:.1f}" if r.pg and r.wall else "n/a"])
        say(table(["endpoint", "requests", "req/s", "p50 ms", "p99 ms", "healthz÷ req/s", "p50÷healthz", "409",
                   "other err", "CPU client", "CPU server", "CPU pg", "CPU other", "CPU machine", "commits/req", "inserts/req", "new pg conns/s"],
                  rows))
        for kind in ENDPOINTS:
            r = results.get((kind, n))
            if r is not None and (r.errors or r.note or r.samples):
                say(f"  {LABELS[kind]}: {r.note} {dict(r.errors) or ''} {r.samples or ''}".rstrip())
    one = results.get(("healthz", min(clients)))
    if one is not None and pct(one.latencies, 50) > 0.030 and one.cpu.get("server", 1.0) < 0.5:
        say(f"\n  note: /healthz takes {ms(pct(one.latencies, 50))} ms at p50 with {min(clients)} client(s) while the "
            f"server uses {_pct_cpu(one.cpu.get('server'))} of a CPU: the time is spent waiting, not working. A "
            "floor near 40 ms is Nagle's algorithm meeting the client's delayed ACK: with --workers > 1 uvicorn "
            "binds the listener itself with proto 0, so asyncio never sets TCP_NODELAY on accepted connections.")
    say("\n  (healthz÷ req/s: how many /healthz requests the server answers in the time of one of these; "
        "CPU: share of one CPU, 100% = one core busy; pg = the bench database's backends; other = the rest of "
        "the machine (other programs: when it is high, every figure is squeezed); commits, inserts and new "
        "connections (sessions) from pg_stat_database, which backends update about once a second, so they are "
        "approximate; the pg CPU misses backends that ended within the window, so it is low when conns/s is not 0)")

    say("\n== side by side: req/s (p50 / p99 ms) ==")
    rows = []
    for kind in ENDPOINTS:
        row = [LABELS[kind]]
        for n in clients:
            r = results.get((kind, n))
            row.append("n/a" if r is None else f"{r.rps:,.0f} ({ms(pct(r.latencies, 50))} / {ms(pct(r.latencies, 99))})")
        rows.append(row)
    say(table(["endpoint", *[f"{n} client{'s' if n != 1 else ''}" for n in clients]], rows))
    rows = []
    for kind in ENDPOINTS[1:]:
        row = [LABELS[kind]]
        for n in clients:
            r, b = results.get((kind, n)), results.get(("healthz", n))
            row.append("n/a" if r is None or b is None or not r.rps else f"{b.rps / r.rps:.1f}x")
        rows.append(row)
    say(table(["throughput ratio /healthz ÷ endpoint", *[f"{n} client{'s' if n != 1 else ''}" for n in clients]],
              rows))


def environment(db: Database, args: argparse.Namespace) -> None:
    import fastapi
    import psycopg
    import starlette
    import uvicorn

    try:
        with db.admin.connect() as conn:
            pg = conn.execute(sa.text("SHOW server_version")).scalar_one()
            pg += f" (synchronous_commit={conn.execute(sa.text('SHOW synchronous_commit')).scalar_one()}, " \
                  f"max_connections={conn.execute(sa.text('SHOW max_connections')).scalar_one()})"
    except sa.exc.OperationalError as exc:
        pg = f"unreachable ({exc.orig})"
    extras = [m for m in ("uvloop", "httptools") if _importable(m)]
    say("Forløp HTTP API benchmark")
    say(table(["what", "value"], [
        ["Python", f"{platform.python_implementation()} {platform.python_version()}"],
        ["PostgreSQL (server)", pg],
        ["FastAPI / Starlette / uvicorn", f"{fastapi.__version__} / {starlette.__version__} / {uvicorn.__version__}"],
        ["uvicorn speedups (uvloop, httptools)", ", ".join(extras) or "none installed (asyncio loop, h11 parser)"],
        ["SQLAlchemy / psycopg / httpx", f"{sa.__version__} / {psycopg.__version__} / {httpx.__version__}"],
        ["platform", platform.platform()],
        ["CPUs", str(os.cpu_count())],
        ["load average (1/5/15 min)", loadavg()],
    ]))
    say(f"  command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    say(f"  client: {args.client}; {args.duration:g} s per measurement after {args.warmup:g} s of warm-up; "
        f"server workers: {args.workers}")


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# -- main --------------------------------------------------------------------------------------------------------


async def run_measurements(args: argparse.Namespace, server: Server, token: str, work: CompletionWork,
                           db: Database) -> dict[tuple[str, int], Result]:
    meter = CpuMeter(server.pids(), db)
    results: dict[tuple[str, int], Result] = {}
    common = {"port": server.port, "token": token, "work": work, "client_kind": args.client}
    for n in args.clients:
        for kind in ENDPOINTS:
            # Untimed warm-up at this concurrency: pools filled, statements prepared, threads started.
            await measure(kind, n, args.warmup, meter=None, db=None, record=False, **common)
            note(f"  measuring {LABELS[kind]} with {n} client(s) for {args.duration:g} s ...")
            r = await measure(kind, n, args.duration, meter=meter, db=db, **common)
            results[(kind, n)] = r
            note(f"    {r.count:,} requests, {r.rps:,.0f} req/s, p50 {ms(pct(r.latencies, 50))} ms, "
                 f"p99 {ms(pct(r.latencies, 99))} ms, statuses {dict(r.statuses)}")
    return results


def main(made: Made, argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--cases", type=int, default=None, help="open cases in the unit (default 10,000; 2,000 with --quick)")
    p.add_argument("--workers", type=int, default=2, help="server worker processes (forlop serve --workers)")
    p.add_argument("--clients", default="1,8,32", help="comma-separated concurrent client counts")
    p.add_argument("--duration", type=float, default=None, help="seconds per measurement (default 10; 3 with --quick)")
    p.add_argument("--warmup", type=float, default=None, help="untimed seconds before each measurement (default 2; 1 with --quick)")
    p.add_argument("--client", choices=["httpx", "raw"], default="httpx",
                   help="httpx: httpx.AsyncClient; raw: a minimal HTTP/1.1 client on asyncio streams (cheaper)")
    p.add_argument("--pg-url", default=os.environ.get("FORLOP_TEST_POSTGRES_URL", DEFAULT_PG),
                   help="a PostgreSQL server URL allowed to CREATE/DROP DATABASE")
    p.add_argument("--quick", action="store_true", help="smoke run: 2,000 cases, 3 s per measurement")
    p.add_argument("--server-command", default=None,
                   help="to compare a variant of the server: the command line up to its options, e.g. "
                        "'env PYTHONPATH=/tmp/variant .venv/bin/python -m pathway.cli serve' (default: forlop serve); "
                        "--workers, --host and --port are appended")
    p.add_argument("--keep-log", action="store_true", help="keep the server's log file (its path is printed)")
    args = p.parse_args(argv)
    args.cases = args.cases if args.cases is not None else (2_000 if args.quick else 10_000)
    args.duration = args.duration if args.duration is not None else (3.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    try:
        args.clients = [int(x) for x in args.clients.split(",") if x.strip()]
    except ValueError:
        p.error("--clients: comma-separated integers")
    if not args.clients or min(args.clients) < 1 or max(args.clients) > 256:
        p.error("--clients: between 1 and 256")
    if args.cases < 100 or args.duration <= 0 or args.workers < 1:
        p.error("--cases ≥ 100, --duration > 0, --workers ≥ 1")
    url = sa.engine.make_url(args.pg_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.host not in (None, "127.0.0.1", "localhost", "::1"):
        p.error("--pg-url: this benchmark talks to 127.0.0.1 only")

    started = time.perf_counter()
    db = Database(url.render_as_string(hide_password=False))
    environment(db, args)
    logdir = tempfile.mkdtemp(prefix="forlop-bench-api-") if args.keep_log else str(made.temp_dir("forlop-bench-api-"))
    server: Server | None = None
    results: dict[tuple[str, int], Result] = {}
    stopped: dict[str, Any] = {}
    try:
        db.create(made)
        note(f"building the data set: {args.cases:,} open cases in {DB_NAME} ...")
        refs, build = build_data_set(db.url, args.cases)
        say(f"\n== data set ==\n  {args.cases:,} open cases of unit {UNIT} opened one by one with services.open_case "
            f"in {build['open']:.1f} s ({args.cases / build['open']:,.0f}/s); migrate {build['migrate']:.1f} s; "
            f"total {build['total']:.1f} s")
        port = free_port()
        server = Server(made, db.url, args.workers, port, logdir, args.server_command)
        note(f"starting: {' '.join(server.command)}")
        ready = server.wait_ready()
        say(f"  server: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(server.command))} "
            f"(pids {server.pids()}), ready after {ready:.1f} s")
        token = sign_in(server.base)
        work = CompletionWork(refs)
        problems = check_answers(server.base, token, work)
        say("  answers checked: " + ("ok (list of 50 of the unit; completion bumps the version; a stale one is 409)"
                                     if not problems else "; ".join(problems)))
        results = asyncio.run(run_measurements(args, server, token, work, db))
        say(f"  completions used {work.used_cases:,} of {args.cases:,} cases "
            f"({len(work.fresh):,} untouched left); load average {loadavg()}")
    finally:
        if server is not None:
            stopped = server.stop()
            if args.keep_log:
                note(f"server log: {server.log_path}")
        db.close()
        made.remove()  # the database and the log folder, before the report
    if results:
        report(results, args.clients)
    if stopped:
        say(f"\n  server stopped with {stopped['signal']} in {stopped['seconds']:.1f} s, exit code {stopped['exit']}; "
            f"database {DB_NAME} dropped")
    say(f"  total {time.perf_counter() - started:.0f} s ; load average at the end {loadavg()}")
    return 0


if __name__ == "__main__":
    cleanup.run(main)
