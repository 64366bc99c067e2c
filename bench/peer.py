#!/usr/bin/env python
"""Forløp against a peer engine, SpiffWorkflow 3.2: the same walk of a case, persisted alike, side by side in one run.

Issue 19 asks for CPU per persisted step at most 1/3 of SpiffWorkflow's and opening a case no slower than Spiff's
create. Both sides run on the same database, through the same SQLAlchemy engine (the same pool, PRAGMAs and
``BEGIN IMMEDIATE`` on SQLite), one transaction per persisted operation:

- **Forløp**: ``bench/engine.py``'s ``SEQUENCE`` of the ``krisesenter`` pathway through the services: open, then 14
  operations (K1, K2, coordinator, consent, support, a police handover created, accepted and completed, K8, a
  milestone, K10, move-out, K11, close), each ``services.change_case``: load the case, run the command, save the
  case and its steps, append the audit event.
- **SpiffWorkflow**: ``bench/peer_walk.bpmn``, 15 user tasks in a line, parsed once (as Forløp compiles its
  definition once). Open: ``BpmnWorkflow`` run to its first user task, serialised to JSON, the row and an event
  row inserted. Each step: the JSON loaded, deserialised, the ready user task completed (its actor and time in
  the task's data), the engine run to the next one, serialised, the row updated under a version check and an
  event row inserted.

The sides take turns in chunks of ``--chunk`` cases (who goes first alternates too), so load on the machine hits
both alike. It prints wall and CPU time (``time.process_time``: this process, so on SQLite it includes the
database engine, on PostgreSQL not the server) per open and per persisted step, and the ratios Forløp/Spiff. It
never asserts on time. ``--profile`` adds cProfile of Forløp's steps and opens (top functions by own CPU time).

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/peer.py [--cases 200] [--chunk 10] [--backends sqlite,postgresql] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import sqlite3
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cleanup  # noqa: E402
from bench.cleanup import Made  # noqa: E402
from bench.engine import (  # noqa: E402
    DEFAULT_PG,
    SEQUENCE,
    T0,
    Databases,
    Handle,
    engine_op,
    fsync_probe,
    loadavg,
    own_time_by_area,
    pct,
    say,
    table,
    us,
)
from pathway.bootstrap import Forlop  # noqa: E402
from pathway.store.engine import WRITE  # noqa: E402
from pathway.store.tables import case_t  # noqa: E402

BPMN = Path(__file__).resolve().with_name("peer_walk.bpmn")
PROCESS = "peer_walk"
TARGETS = {"step CPU": 0.33, "open CPU": 1.0, "open wall": 1.0}  # Forløp / Spiff, issue 19

# The peer's rows: the workflow's JSON with a version for the optimistic check, and an event per operation.
peer_metadata = sa.MetaData()
peer_workflow_t = sa.Table(
    "peer_workflow", peer_metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
peer_event_t = sa.Table(
    "peer_event", peer_metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("workflow_id", sa.Uuid, sa.ForeignKey("peer_workflow.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(80), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.UniqueConstraint("workflow_id", "seq"),
)


# -- the two walks -------------------------------------------------------------------------------------------------


def forlop_walk(core: Forlop, h: Handle, timed: Callable[[bool, Callable[[], None]], None]) -> None:
    """Open one case and walk it through SEQUENCE, each operation through ``timed(is_open, run)``."""
    for k in range(len(SEQUENCE)):
        timed(k == 0, lambda: engine_op(core, k, h))


class Spiff:
    """SpiffWorkflow persisted as JSON in a row of ``peer_workflow``, on the engine given."""

    def __init__(self, engine: sa.Engine) -> None:
        # Imported here: the product and its tests never need the extra, only this side of the benchmark.
        from SpiffWorkflow.bpmn.parser import BpmnParser
        from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
        from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
        from SpiffWorkflow.util.task import TaskState

        parser = BpmnParser()
        parser.add_bpmn_file(str(BPMN))
        self.spec = parser.get_spec(PROCESS)
        self.user_tasks = sum(1 for spec in self.spec.task_specs.values() if spec.manual)
        self.workflow_class = BpmnWorkflow
        self.serializer = BpmnWorkflowSerializer()
        self.ready = TaskState.READY
        self.engine = engine
        self.phases: dict[str, float] = defaultdict(float)  # wall seconds per phase of a step, summed
        self.size = 0  # bytes of JSON of the last workflow saved
        peer_metadata.create_all(engine)

    def _write(self) -> sa.Connection:
        return self.engine.connect().execution_options(**{WRITE: True})

    def open(self, at: datetime, actor: str = "mottak") -> uuid.UUID:
        workflow = self.workflow_class(self.spec)
        workflow.do_engine_steps()
        state = self.serializer.serialize_json(workflow)
        wid = uuid.uuid4()
        with self._write() as conn, conn.begin():
            conn.execute(peer_workflow_t.insert().values(id=wid, version=1, state=state, updated_at=at))
            conn.execute(peer_event_t.insert().values(id=uuid.uuid4(), workflow_id=wid, seq=1, kind="open",
                                                      actor=actor, at=at, data={}))
        return wid

    def step(self, wid: uuid.UUID, at: datetime, actor: str = "koordinator") -> str:
        """Complete the ready user task of workflow ``wid``; its name."""
        perf, phases = time.perf_counter, self.phases
        with self._write() as conn, conn.begin():
            t0 = perf()
            version, state = conn.execute(sa.select(peer_workflow_t.c.version, peer_workflow_t.c.state)
                                          .where(peer_workflow_t.c.id == wid)).one()
            t1 = perf()
            workflow = self.serializer.deserialize_json(state)
            t2 = perf()
            task = workflow.get_next_task(state=self.ready, manual=True)
            if task is None:
                raise RuntimeError(f"peer workflow {wid} has no ready user task")
            task.data.update(actor=actor, at=at.isoformat())
            task.run()
            workflow.do_engine_steps()
            t3 = perf()
            state = self.serializer.serialize_json(workflow)
            t4 = perf()
            done = conn.execute(peer_workflow_t.update()
                                .where(peer_workflow_t.c.id == wid, peer_workflow_t.c.version == version)
                                .values(version=version + 1, state=state, updated_at=at))
            if done.rowcount != 1:
                raise RuntimeError(f"peer workflow {wid} changed under us")
            name = task.task_spec.name
            conn.execute(peer_event_t.insert().values(id=uuid.uuid4(), workflow_id=wid, seq=version + 1,
                                                      kind="complete", actor=actor, at=at, data={"task": name}))
            t5 = perf()
        phases["load"] += t1 - t0
        phases["deserialise"] += t2 - t1
        phases["run the task"] += t3 - t2
        phases["serialise"] += t4 - t3
        phases["update + insert"] += t5 - t4
        phases["commit"] += perf() - t5
        self.size = len(state)
        return name

    def walk(self, at: datetime, timed: Callable[[bool, Callable[[], None]], None]) -> None:
        wid: list[uuid.UUID] = []
        timed(True, lambda: wid.append(self.open(at)))
        for n in range(self.user_tasks):
            timed(False, lambda: self.step(wid[0], at + timedelta(hours=n + 1)))


# -- timing ------------------------------------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    walk: Callable[[int, Callable[[bool, Callable[[], None]], None]], None]  # case number, timer
    wall: dict[bool, float] = field(default_factory=lambda: {True: 0.0, False: 0.0})  # by is_open
    cpu: dict[bool, float] = field(default_factory=lambda: {True: 0.0, False: 0.0})
    lat: dict[bool, list[float]] = field(default_factory=lambda: {True: [], False: []})

    def timed(self, is_open: bool, run: Callable[[], None]) -> None:
        c0, t0 = time.process_time(), time.perf_counter()
        run()
        t1, c1 = time.perf_counter(), time.process_time()
        self.wall[is_open] += t1 - t0
        self.cpu[is_open] += c1 - c0
        self.lat[is_open].append(t1 - t0)

    def per(self, what: dict[bool, float], is_open: bool) -> float:
        return what[is_open] / len(self.lat[is_open])


def run_backend(backend: str, dbs: Databases, args: argparse.Namespace) -> dict[str, Any]:
    say(f"\n== {backend}: {args.cases} cases a side, chunks of {args.chunk} ==")
    core = dbs.core(dbs.new(backend, "peer"))
    try:
        spiff = Spiff(core.engine)
        forlop = Side("Forløp", lambda i, timed: forlop_walk(core, Handle(start=T0 + timedelta(seconds=i)), timed))
        peer = Side("SpiffWorkflow 3.2", lambda i, timed: spiff.walk(T0 + timedelta(seconds=i), timed))
        for i in range(args.warmup):  # untimed: statements compiled, pool warm, caches filled
            for side in (forlop, peer):
                side.walk(-1 - i, lambda _is_open, run: run())
        spiff.phases.clear()
        for chunk, start in enumerate(range(0, args.cases, args.chunk)):
            for side in (forlop, peer) if chunk % 2 == 0 else (peer, forlop):
                for i in range(start, min(start + args.chunk, args.cases)):
                    side.walk(i, side.timed)
        with core.engine.connect() as conn:
            closed = conn.execute(sa.select(sa.func.count()).select_from(case_t).where(
                case_t.c.phase == "closed", case_t.c.version == len(SEQUENCE))).scalar_one()
            finished = conn.execute(sa.select(sa.func.count()).select_from(peer_workflow_t).where(
                peer_workflow_t.c.version == spiff.user_tasks + 1)).scalar_one()
        expected = args.cases + args.warmup
        if closed != expected or finished != expected:
            raise RuntimeError(f"walks did not finish: Forløp {closed} closed, Spiff {finished} done, of {expected}")
    finally:
        core.close()

    rows = []
    for side in (forlop, peer):
        rows.append([side.name, f"{len(side.lat[True]):,}", f"{len(side.lat[False]):,}",
                     ms(side.per(side.wall, True)), ms(side.per(side.cpu, True)),
                     ms(side.per(side.wall, False)), ms(side.per(side.cpu, False)),
                     ms(pct(side.lat[False], 50)), ms(pct(side.lat[False], 99))])
    ratio = {
        "open wall": forlop.per(forlop.wall, True) / peer.per(peer.wall, True),
        "open CPU": forlop.per(forlop.cpu, True) / peer.per(peer.cpu, True),
        "step wall": forlop.per(forlop.wall, False) / peer.per(peer.wall, False),
        "step CPU": forlop.per(forlop.cpu, False) / peer.per(peer.cpu, False),
    }
    rows.append(["Forløp / Spiff", "", "", f"{ratio['open wall']:.2f}x", f"{ratio['open CPU']:.2f}x",
                 f"{ratio['step wall']:.2f}x", f"{ratio['step CPU']:.2f}x",
                 f"{pct(forlop.lat[False], 50) / pct(peer.lat[False], 50):.2f}x", ""])
    say(table(["side", "opens", "steps", "open wall ms", "open CPU ms", "step wall ms", "step CPU ms",
               "step p50 ms", "step p99 ms"], rows))
    say("  targets (issue 19): " + ", ".join(
        f"{k} ≤ {v}x: {ratio[k]:.2f}x {'met' if ratio[k] <= v else 'missed'}" for k, v in TARGETS.items()))
    steps = len(peer.lat[False])
    say("  Spiff step by phase (wall ms): " + ", ".join(f"{k} {ms(v / steps)}" for k, v in spiff.phases.items())
        + f" ; {spiff.size:,} bytes of JSON per finished workflow ; load {loadavg()}")
    return {"backend": backend, "ratio": ratio, "forlop": forlop, "peer": peer}


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


# -- profile ------------------------------------------------------------------------------------------------------


def profile(dbs: Databases, args: argparse.Namespace) -> None:
    """cProfile Forløp's steps and its opens on SQLite, apart, on CPU time (the figure issue 19 counts; a wall-clock
    profile is mostly the wait for fsync at commit): the top functions by own time, and own time by area."""
    core = dbs.core(dbs.new("sqlite", "profile"))
    try:
        for i in range(args.warmup):
            forlop_walk(core, Handle(start=T0 - timedelta(days=1, seconds=i)), lambda _o, run: run())
        profilers = {True: cProfile.Profile(time.process_time), False: cProfile.Profile(time.process_time)}
        counts = {True: 0, False: 0}

        def under(is_open: bool, run: Callable[[], None]) -> None:
            counts[is_open] += 1
            profilers[is_open].runcall(run)

        for i in range(args.profile_cases):
            forlop_walk(core, Handle(start=T0 + timedelta(seconds=i)), under)
    finally:
        core.close()
    for is_open, top in ((False, 25), (True, 15)):
        n = counts[is_open]
        st = pstats.Stats(profilers[is_open])
        entries = st.stats  # type: ignore[attr-defined]
        total = sum(tt for _cc, _nc, tt, _ct, _callers in entries.values())
        say(f"\n== profile: Forløp {'open' if is_open else 'per step'} on SQLite, {n:,} under cProfile: "
            f"{us(total / n)} µs CPU per {'open' if is_open else 'step'} (the profiler inflates Python) ==")
        rows = []
        for (filename, line, func), (_cc, nc, tt, ct, _callers) in sorted(entries.items(), key=lambda kv: -kv[1][2])[:top]:
            where = filename.split("site-packages/")[-1].replace(str(Path(__file__).resolve().parent.parent) + "/", "")
            rows.append([f"{func} ({where}:{line})", f"{nc / n:.1f}", us(tt / n), f"{tt / total * 100:.1f}%",
                         us(ct / n)])
        say(table(["function", "calls", "own µs", "own share", "cum µs"], rows, indent="    "))
        areas = own_time_by_area(entries)
        say("  own time by area: " + ", ".join(f"{a} {t / total * 100:.0f}%"
                                               for a, t in sorted(areas.items(), key=lambda kv: -kv[1])))


# -- main --------------------------------------------------------------------------------------------------------


def reachable(url: str) -> str | None:
    """The server's version, or None when nothing answers at ``url``."""
    try:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            return str(conn.exec_driver_sql("SHOW server_version").scalar_one())
    except sa.exc.OperationalError:
        return None


def main(made: Made, argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--cases", type=int, default=200, help="cases walked per side and backend (default 200; a pair "
                   "of cases costs ~0.1 s on SQLite on the 2-core machine)")
    p.add_argument("--chunk", type=int, default=10, help="cases per turn before the other side goes (default 10)")
    p.add_argument("--warmup", type=int, default=5, help="untimed cases per side first (default 5)")
    p.add_argument("--backends", default=None, help="comma-separated: sqlite, postgresql (default both, PostgreSQL "
                   "only if its server answers)")
    p.add_argument("--database-url", default=os.environ.get("FORLOP_TEST_POSTGRES_URL", DEFAULT_PG),
                   help="a PostgreSQL server that lets this run CREATE and DROP its scratch database "
                        f"(default FORLOP_TEST_POSTGRES_URL or {DEFAULT_PG})")
    p.add_argument("--sqlite-synchronous", default="FULL", choices=["NORMAL", "FULL", "EXTRA"])
    p.add_argument("--profile", action="store_true", help="also cProfile Forløp's steps and opens on SQLite")
    p.add_argument("--profile-cases", type=int, default=40, help="cases walked under the profiler (default 40)")
    p.add_argument("--workdir", default=None, help="where SQLite files go (default: the system temp dir)")
    args = p.parse_args(argv)
    if args.cases < 1 or args.chunk < 1:
        p.error("--cases and --chunk must be at least 1")
    try:
        spiff_version = metadata.version("SpiffWorkflow")
    except metadata.PackageNotFoundError:
        p.error("SpiffWorkflow is not installed: .venv/bin/pip install -e '.[bench]'")
    pg_url = sa.engine.make_url(args.database_url)
    if pg_url.drivername in ("postgresql", "postgres"):
        pg_url = pg_url.set(drivername="postgresql+psycopg")
    pg = pg_url.render_as_string(hide_password=False)
    pg_version = reachable(pg)
    if args.backends is None:
        backends = ["sqlite"] + (["postgresql"] if pg_version else [])
    else:
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        if unknown := set(backends) - {"sqlite", "postgresql"}:
            p.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
        if "postgresql" in backends and not pg_version:
            p.error(f"no PostgreSQL server answers at {pg_url.render_as_string()}")

    started = time.perf_counter()
    dbs = Databases(made, pg, args.workdir, args.sqlite_synchronous)
    say("Forløp against SpiffWorkflow: the same walk, persisted alike")
    say(table(["what", "value"], [
        ["Python", f"{platform.python_implementation()} {platform.python_version()}"],
        ["SpiffWorkflow / SQLAlchemy", f"{spiff_version} / {sa.__version__}"],
        ["SQLite (library)", f"{sqlite3.sqlite_version} (synchronous={args.sqlite_synchronous})"],
        ["PostgreSQL (server)", pg_version or "not reachable"],
        ["platform / CPUs", f"{platform.platform()} / {os.cpu_count()}"],
        ["load average (1/5/15 min)", loadavg()],
        ["fsync", fsync_probe(dbs.tmp)],
        ["Forløp walk", f"{len(SEQUENCE)} operations: " + "; ".join(op.name for op in SEQUENCE)],
        ["Spiff walk", f"open (create, run to K1), then 15 user tasks ({BPMN.name})"],
    ]))
    results = [run_backend(b, dbs, args) for b in backends]
    if args.profile:
        profile(dbs, args)
    say("\n== summary: Forløp / Spiff (lower is better for Forløp) ==")
    say(table(["backend", "open wall", "open CPU", "step wall", "step CPU", "step CPU target"], [
        [r["backend"], *(f"{r['ratio'][k]:.2f}x" for k in ("open wall", "open CPU", "step wall", "step CPU")),
         f"≤ {TARGETS['step CPU']}x"] for r in results]))
    say(f"  total {time.perf_counter() - started:.0f} s ; load average at the end {loadavg()}")
    return 0


if __name__ == "__main__":
    cleanup.run(main)
