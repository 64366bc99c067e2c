#!/usr/bin/env python
"""Reminder-scan benchmark: the scan's indexed question against the whole scan, at scale, on each backend.

Run from the repository root (``.venv/bin/python bench/scan.py``; ``--quick`` for a 20k smoke run). It prints
figures and never asserts on time. Per backend, in one run:

1. Build two data sets with bulk inserts, not through the services (SQLite: the Core INSERT statement with Core's
   own bind processors, executemany'd in chunks of 10k with ``synchronous=OFF`` on the load connection only;
   PostgreSQL: COPY; the step table's plain indexes re-created after the load): ``--open-steps`` N
   open steps (N/10 cases in phase "support", ten open and ten completed steps each, so as many completed steps
   as open ones) and a second set with N/100 open steps. Exactly ``--due`` open steps (K3, owner coordinator,
   default ladder) have ``next_reminder_at <= now`` and ``due_at = now - 2..3 h``, so two rungs are crossed
   (due_soon, due_now); every other open step is due days ahead. One coordinator and one manager per unit (with
   email) and a partner contact per agency, so every reminder routes. ANALYZE (SQLite) / VACUUM ANALYZE
   (PostgreSQL) afterwards.
2. Time, taking turns: (a) the bare ``due_steps_query()`` (now, batch 1000) executed and fetched through Core (and
   through the bare driver, for reference); (b) one ``scan`` (raise only: the reminders of those steps, no routing) with
   the ratio scan/select (target <= 2x) and the cost per reminder; (c) one ``route`` of the reminders that scan
   raised (inbox and outbox rows), with its cost per reminder and per row written; (d) scan + route together,
   as the scheduler runs them (``pathway.scheduler.run_scan``). Scan and route are also replayed, as recorded,
   on the bare DBAPI connection (the floor). Between repetitions, untimed: before a scan the reminder (and
   inbox/outbox) rows are deleted and the steps' ``next_reminder_at`` put back; before a route the inbox/outbox
   rows are deleted and ``routed_at`` set back to NULL; PostgreSQL then VACUUMs the tables, SQLite checkpoints
   its WAL. Every run's counts are checked against the database (1,000 steps -> 2,000 reminders, 2,000 inbox and
   2,000 outbox rows, none unrouted). (e) Scan, and scan + route, with nothing due (``now`` earlier than every
   ``next_reminder_at``), at N and at N/100 side by side, each beside its own floor (its calls replayed on the bare
   driver). Process CPU time is reported next to wall time.
3. Print the query plans of the due query (EXPLAIN QUERY PLAN / EXPLAIN, and EXPLAIN ANALYZE on PostgreSQL) and of
   route's query for unrouted reminders (with none, and with the scan's reminders unrouted).
4. After both backends, one table side by side: empty scan + route (and empty scan) at N against N/100 (target
   <= 1.2x), and the scan against its SQL floor (target <= 1.5x).

When scan/select misses its 2x target, one scan is profiled with cProfile (``--profile always|never``
overrides), and one scan and one route are broken down by SQL statement (driver time per statement and commit).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import itertools
import json
import operator
import os
import platform
import pstats
import random
import re
import sqlite3
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from pathway.bootstrap import Forlop, bootstrap
from pathway.scheduler import run_scan as scheduler_run_scan
from pathway.settings import Settings
from pathway.store.engine import WRITE, normalise_url
from pathway.store.scan import ScanResult, due_steps_query, route, scan, unrouted_query
from pathway.store.tables import case_t, notification_t, outbox_t, reminder_t, step_t, user_t

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import cleanup  # noqa: E402
from bench.cleanup import Made  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PATHWAY = "krisesenter"
PUBLIC_URL = "http://127.0.0.1:8000"
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=timezone.utc)  # a Wednesday, no holiday near: fixed, so runs repeat
IDLE_NOW = NOW - timedelta(days=3)  # earlier than every next_reminder_at of both data sets
LIMIT = 1000  # the scan's default batch
UNITS = 8
OPEN_PER_CASE = 10  # plus as many completed steps: history as large as the open set
OPEN_CODES = ("K3", "K4", "K8", "K12")  # owner coordinator, default ladder: first rung = due_at - 24 h
DONE_CODES = ("K0", "K1", "K2", "K3", "K4", "K5", "K8", "K9", "K12", "K11")
AGENCIES = ("police", "nav", "child_welfare", "health")
CHUNK = 10_000
H = timedelta(hours=1)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- data set -------------------------------------------------------------------------------------------------------


@dataclass
class DataSet:
    label: str
    url: str
    core: Forlop
    open_steps: int
    due: int
    cases: int
    due_steps: list[dict[str, Any]] = field(default_factory=list)  # {"b_id", "b_next"}: to restore
    load_seconds: float = 0.0
    path: Path | None = None  # SQLite file

    @property
    def engine(self) -> sa.Engine:
        return self.core.engine

    @property
    def backend(self) -> str:
        return self.engine.dialect.name


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _case_rows(n_cases: int, version: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    opened = NOW - timedelta(days=30)
    for i in range(n_cases):
        unit = i % UNITS
        yield {"id": _uuid(rng), "reference": f"BEN-2026-{i:07d}", "pathway_id": PATHWAY, "definition_version": version,
               "unit": f"enhet-{unit}", "phase": "support", "coordinator": f"koord-{unit}",
               "opened_at": opened, "paused_since": None, "closed_at": None, "outcome": None,
               "transferred_to": None, "conditions": [], "milestones": {}, "consents": {}, "repeat_contact": False,
               "version": 12, "head_hash": f"{rng.getrandbits(256):064x}", "updated_at": opened + H}


def _step_rows(case_ids: list[uuid.UUID], due: int, rng: random.Random,
               due_steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Per case: ten completed steps (history, next_reminder_at NULL as the engine writes them) and ten open ones.
    Open step 0 of every (len(cases)/due)-th case is one of the ``due`` steps."""
    n = len(case_ids)
    every = max(1, n // due) if due else 0
    due_left = due
    created = NOW - timedelta(days=30)
    for i, case_id in enumerate(case_ids):
        position = 0
        for k in range(OPEN_PER_CASE):  # completed
            code = DONE_CODES[k]
            due_at = created + timedelta(days=1 + k, minutes=10 * int(rng.random() * 60))
            ended = due_at - timedelta(minutes=10 + 10 * int(rng.random() * 120))
            yield {"id": _uuid(rng), "case_id": case_id, "position": position, "code": code,
                   "occurrence": position + 1, "owner": "coordinator", "state": "done", "adhoc": False,
                   "title": None, "created_at": created, "anchor_at": created, "due_at": due_at,
                   "activated_at": created, "ended_at": ended, "ended_by": "koord-0", "next_reminder_at": None}
            position += 1
        for k in range(OPEN_PER_CASE):  # open
            if k == 0 and every and i % every == 0 and due_left:
                due_left -= 1
                code = "K3"
                due_at = NOW - 2 * H - timedelta(seconds=(due - due_left) % 3600)
            else:
                code = OPEN_CODES[k % len(OPEN_CODES)]
                due_at = NOW + timedelta(days=2, minutes=10 * int(rng.random() * 6 * 24 * 60))
            row = {"id": _uuid(rng), "case_id": case_id, "position": position, "code": code,
                   "occurrence": position + 1, "owner": "coordinator", "state": "active", "adhoc": False,
                   "title": None, "created_at": created, "anchor_at": created, "due_at": due_at,
                   "activated_at": created, "ended_at": None, "ended_by": None,
                   "next_reminder_at": due_at - 24 * H}  # the default ladder's first rung
            if due_at < NOW:
                due_steps.append({"b_id": row["id"], "b_next": row["next_reminder_at"]})
            yield row
            position += 1
    assert due_left == 0, "more due steps asked for than cases"


def _users() -> list[dict[str, Any]]:
    rows = []
    for u in range(UNITS):
        rows.append({"username": f"koord-{u}", "role": "coordinator", "unit": f"enhet-{u}", "agency": None,
                     "email": f"koord-{u}@example.invalid", "webhook_url": None})
        rows.append({"username": f"leder-{u}", "role": "manager", "unit": f"enhet-{u}", "agency": None,
                     "email": f"leder-{u}@example.invalid", "webhook_url": None})
    for a in AGENCIES:
        rows.append({"username": f"kontakt-{a}", "role": "partner", "unit": None, "agency": a,
                     "email": None, "webhook_url": f"http://127.0.0.1:9/{a}"})
    return [{"id": uuid.uuid4(), "language": "nb", "active": True, "created_at": NOW - timedelta(days=60), **r}
            for r in rows]


def _chunks(rows: Iterator[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _column_converter(table: sa.Table, names: tuple[str, ...],
                      dialect: sa.Dialect) -> Callable[[list[dict[str, Any]]], list[tuple[Any, ...]]]:
    """Rows (dicts) to driver tuples in ``names`` order through Core's own bind processors, so values are stored
    exactly as the engine stores them. Column by column: columns with few distinct values (timestamps, flags)
    go through the processor once per distinct value, the rest (ids) once per row."""
    getter = operator.itemgetter(*names)
    procs = [(i, proc) for i, name in enumerate(names)
             if (proc := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None]
    unique = {"id", "case_id", "reference", "head_hash"}
    memos: dict[int, dict[Any, Any]] = {i: {} for i, _ in procs if names[i] not in unique}

    def convert(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        columns = list(zip(*map(getter, rows), strict=True))
        for i, proc in procs:
            memo = memos.get(i)
            if memo is not None:
                try:
                    for value in set(columns[i]) - memo.keys():
                        memo[value] = proc(value)
                except TypeError:  # unhashable (JSON lists and dicts): once per row
                    memo = memos.pop(i)
                else:
                    columns[i] = tuple(map(memo.__getitem__, columns[i]))
                    continue
            columns[i] = tuple(map(proc, columns[i]))
        return list(zip(*columns, strict=True))

    return convert


def _secondary_indexes_sqlite(raw: Any, table: str) -> list[tuple[str, str]]:
    return raw.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                       (table,)).fetchall()


def _load_sqlite(ds: DataSet, rng: random.Random) -> None:
    """The Core INSERT statement with Core's bind processors, executemany'd through the driver in chunks of 10k,
    with synchronous=OFF, foreign keys off and a large page cache on this connection only (it is thrown away
    afterwards, so every timed connection has the engine's own PRAGMAs). The step table's plain indexes
    (``CREATE INDEX``, not the key and unique constraints) are dropped for the load and re-created from their
    own stored SQL afterwards."""
    conn = ds.engine.connect().execution_options(**{WRITE: True})
    try:
        raw = conn.connection.driver_connection
        raw.execute("PRAGMA synchronous=OFF")
        raw.execute("PRAGMA foreign_keys=OFF")
        raw.execute("PRAGMA cache_size=-1000000")  # 1 GB: random UUID keys otherwise thrash the page cache
        with conn.begin():
            conn.execute(sa.insert(user_t), _users())
        indexes = _secondary_indexes_sqlite(raw, step_t.name)
        for name, _sql in indexes:
            raw.execute(f'DROP INDEX "{name}"')

        def insert(table: sa.Table, rows: Iterator[dict[str, Any]], total: int = 0) -> list[uuid.UUID]:
            first = next(rows)
            names = tuple(c.name for c in table.columns if c.name in first)
            compiled = sa.insert(table).compile(dialect=conn.dialect, column_keys=list(names))
            order = tuple(compiled.positiontup or ())
            convert = _column_converter(table, order, conn.dialect)
            sql = str(compiled)
            ids: list[uuid.UUID] = []
            done = 0
            cur = raw.cursor()
            for chunk in _chunks(itertools.chain([first], rows)):
                raw.execute("BEGIN")
                cur.executemany(sql, convert(chunk))
                raw.execute("COMMIT")
                ids.extend(row["id"] for row in chunk)
                done += len(chunk)
                if total and (done % 500_000 == 0 or done == total):
                    log(f"  {ds.label}: {done:,}/{total:,} {table.name} rows")
            cur.close()
            return ids

        case_ids = insert(case_t, _case_rows(ds.cases, ds.core.catalog.latest(PATHWAY).version, rng))
        insert(step_t, _step_rows(case_ids, ds.due, rng, ds.due_steps), total=ds.cases * OPEN_PER_CASE * 2)
        log(f"  {ds.label}: CREATE INDEX {', '.join(n for n, _ in indexes)}; ANALYZE; checkpoint")
        for _name, sql in indexes:
            raw.execute(sql)
        raw.execute("ANALYZE")
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.invalidate()  # never hand the load connection (synchronous=OFF, big cache) back to the pool
        conn.close()
    ds.engine.dispose()


def _load_postgresql(ds: DataSet, rng: random.Random) -> None:
    """COPY through the driver on a connection of its own (synchronous_commit off, foreign-key triggers off
    through session_replication_role), the step table's plain indexes (not the key and unique constraints)
    dropped for the load and re-created from their own definitions (pg_get_indexdef), then VACUUM ANALYZE."""
    conn = ds.engine.connect()
    try:
        raw = conn.connection.driver_connection
        raw.execute("SET synchronous_commit = off")
        raw.execute("SET session_replication_role = replica")  # this session only: no RI triggers during COPY
        raw.execute("SET maintenance_work_mem = '256MB'")
        indexes = raw.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'step'::regclass AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)").fetchall()
        for name, _sql in indexes:
            raw.execute(f'DROP INDEX "{name}"')
        raw.commit()

        def copy(table: sa.Table, rows: Iterator[dict[str, Any]], total: int = 0) -> list[uuid.UUID]:
            first = next(rows)
            names = [c.name for c in table.columns if c.name in first]  # columns we don't fill: their defaults
            as_json = {n for n in names if isinstance(table.c[n].type, sa.JSON)}
            ids: list[uuid.UUID] = []
            done = 0
            with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as cp:
                for row in itertools.chain([first], rows):
                    cp.write_row([json.dumps(row[n]) if n in as_json else row[n] for n in names] if as_json
                                 else [row[n] for n in names])
                    ids.append(row["id"])
                    done += 1
                    if total and (done % 500_000 == 0 or done == total):
                        log(f"  {ds.label}: {done:,}/{total:,} {table.name} rows")
            raw.commit()
            return ids

        copy(user_t, iter(_users()))
        case_ids = copy(case_t, _case_rows(ds.cases, ds.core.catalog.latest(PATHWAY).version, rng))
        copy(step_t, _step_rows(case_ids, ds.due, rng, ds.due_steps), total=ds.cases * OPEN_PER_CASE * 2)
        log(f"  {ds.label}: CREATE INDEX {', '.join(n for n, _ in indexes)}; VACUUM ANALYZE")
        for _name, sql in indexes:
            raw.execute(sql)
        raw.commit()
        raw.autocommit = True
        raw.execute("VACUUM ANALYZE")
    finally:
        conn.invalidate()
        conn.close()
    ds.engine.dispose()


def build(label: str, url: str, *, open_steps: int, due: int, seed: int, path: Path | None = None) -> DataSet:
    t0 = time.perf_counter()
    core = bootstrap(Settings(env="test", database_url=url))
    cases = max(1, open_steps // OPEN_PER_CASE)
    due = min(due, cases)
    ds = DataSet(label=label, url=url, core=core, open_steps=cases * OPEN_PER_CASE, due=due, cases=cases, path=path)
    log(f"{label}: loading {cases:,} cases, {ds.open_steps:,} open + {ds.open_steps:,} completed steps, {due:,} due")
    rng = random.Random(seed)
    (_load_postgresql if ds.backend == "postgresql" else _load_sqlite)(ds, rng)
    ds.load_seconds = time.perf_counter() - t0
    with ds.engine.connect() as conn:
        counts = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                  for t in (case_t, step_t)}
        due_now = conn.execute(sa.select(sa.func.count()).select_from(step_t).where(
            step_t.c.ended_at.is_(None), step_t.c.next_reminder_at <= NOW)).scalar_one()
    log(f"{label}: loaded in {ds.load_seconds:.1f} s: {counts}, due at now: {due_now:,}")
    if due_now != due or len(ds.due_steps) != due:
        raise SystemExit(f"{label}: expected {due} due steps, found {due_now}")
    return ds


# -- measuring ------------------------------------------------------------------------------------------------------


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall ms, CPU ms of this process, result)."""
    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return (time.perf_counter() - w0) * 1000, (time.process_time() - c0) * 1000, out


def _capture(engine: sa.Engine, run: Callable[[sa.Connection], Any]) -> list[tuple[str, Any]]:
    """The statements and driver parameters ``run`` sends (so EXPLAIN and the driver floor use exactly them)."""
    seen: list[tuple[str, Any]] = []

    def listener(_c, _cur, statement, parameters, _ctx, _many):  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    with engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", listener)
        with conn.begin() as tx:
            run(conn)
            tx.rollback()
        event.remove(conn, "before_cursor_execute", listener)
    return [s for s in seen if not s[0].startswith("BEGIN")]


Call = tuple[str, Any, bool]  # statement, driver parameters, executemany; ("COMMIT", None, False) between


def record(ds: DataSet, run: Callable[[], ScanResult]) -> tuple[list[Call], ScanResult]:
    """Every driver call of ``run`` (a scan or a route), in order, with its commits: what the bare-driver replay
    sends."""
    calls: list[Call] = []

    def before(_c, _cur, statement, parameters, _ctx, executemany):  # type: ignore[no-untyped-def]
        # A batch of SQLAlchemy's "insertmanyvalues" (INSERT … VALUES (…), (…) RETURNING) is reported with
        # executemany=True but sent with execute() and flat parameters.
        many = executemany and isinstance(parameters, (list, tuple)) and bool(parameters) \
            and isinstance(parameters[0], (list, tuple, dict))
        calls.append((statement, parameters, many))

    def on_commit(_conn):  # type: ignore[no-untyped-def]
        calls.append(("COMMIT", None, False))

    event.listen(ds.engine, "before_cursor_execute", before)
    event.listen(ds.engine, "commit", on_commit)
    try:
        result = run()
    finally:
        event.remove(ds.engine, "before_cursor_execute", before)
        event.remove(ds.engine, "commit", on_commit)
    return calls, result


def replay(ds: DataSet, calls: list[Call]) -> None:
    """Recorded calls through the bare DBAPI connection (same pool, same PRAGMAs, same statements, parameters,
    row counts and commits; no Python logic, no SQLAlchemy): the floor for the SQL as the scan/route issues it."""
    pooled = ds.engine.raw_connection()
    try:
        dbapi = pooled.driver_connection
        cur = dbapi.cursor()
        for statement, params, many in calls:
            if statement == "COMMIT":
                dbapi.commit()
                continue
            if many:
                cur.executemany(statement, params)
            else:
                cur.execute(statement, params)
            if cur.description is not None:
                cur.fetchall()
        cur.close()
    finally:
        pooled.close()


@dataclass
class Runs:
    """Wall and CPU ms of this process, one entry per repetition."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, wall: float, cpu: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)

    @property
    def med(self) -> float:
        return statistics.median(self.wall)

    @property
    def med_cpu(self) -> float:
        return statistics.median(self.cpu)


@dataclass
class DueTimings:
    rows: int = 0
    select: Runs = field(default_factory=Runs)  # Core, execute + fetch
    select_driver: Runs = field(default_factory=Runs)
    scan: Runs = field(default_factory=Runs)  # (b) scan(): raise only
    scan_replay: Runs = field(default_factory=Runs)
    route: Runs = field(default_factory=Runs)  # (c) route() of what the scan raised
    route_replay: Runs = field(default_factory=Runs)
    both: Runs = field(default_factory=Runs)  # (d) scheduler.run_scan: scan() then route()
    scan_result: ScanResult | None = None
    route_result: ScanResult | None = None
    both_result: ScanResult | None = None


def measure_due(ds: DataSet, select_reps: int, scan_reps: int) -> DueTimings:
    """(a) to (d) taking turns, so load on the machine hits all alike: the select (Core, and the bare driver),
    scan, route, the driver replays of both, and scan + route. The select is timed from execute to the last row
    fetched on an open read transaction; scan and route from call to return (connections, transactions, commits
    included). Before each timed run the state is reset, untimed: reminder rows (and inbox/outbox rows) deleted
    and the steps' next_reminder_at put back before a scan; inbox/outbox rows deleted and routed_at set back to
    NULL before a route (after a scan that is nothing, but the tables are settled alike)."""
    t = DueTimings()
    query, args = due_steps_query(), {"now": NOW, "batch": LIMIT}
    statement, params = _capture(ds.engine, lambda c: c.execute(query, args).all())[0]
    # Warm-up, recording the calls the replays send.
    reset_scan(ds)
    scan_calls, result = record(ds, lambda: do_scan(ds, NOW))
    check_scan(ds, result)
    reset_route(ds)
    route_calls, result = record(ds, lambda: do_route(ds, NOW))
    check_route(ds, result)
    reset_scan(ds)
    check_both(ds, do_both(ds, NOW))
    reset_scan(ds)  # the select (a) runs on the state before a scan
    for i in range(max(select_reps, scan_reps)):
        with ds.engine.connect() as conn, conn.begin():
            if i == 0:
                conn.execute(query, args).all()  # warm-up
            wall, cpu, rows = _timed(lambda: conn.execute(query, args).all())
            if len(rows) != min(ds.due, LIMIT):
                raise SystemExit(f"{ds.label}: the due query found {len(rows)} rows, not {min(ds.due, LIMIT)}")
            t.rows = len(rows)
            t.select.add(wall, cpu)
        pooled = ds.engine.raw_connection()
        try:
            cur = pooled.driver_connection.cursor()
            wall, cpu, _ = _timed(lambda: (cur.execute(statement, params), cur.fetchall()))
            t.select_driver.add(wall, cpu)
            cur.close()
            pooled.driver_connection.rollback()
        finally:
            pooled.close()
        if i >= scan_reps:
            continue
        reset_scan(ds)
        wall, cpu, t.scan_result = _timed(lambda: do_scan(ds, NOW))
        check_scan(ds, t.scan_result)
        t.scan.add(wall, cpu)
        reset_route(ds)  # settles what the scan left (nothing to undo yet)
        wall, cpu, t.route_result = _timed(lambda: do_route(ds, NOW))
        check_route(ds, t.route_result)
        t.route.add(wall, cpu)
        reset_route(ds)
        wall, cpu, _ = _timed(lambda: replay(ds, route_calls))
        check_state(ds, "route replay", routed=True)
        t.route_replay.add(wall, cpu)
        reset_scan(ds)
        wall, cpu, _ = _timed(lambda: replay(ds, scan_calls))
        check_state(ds, "scan replay", routed=False)
        t.scan_replay.add(wall, cpu)
        reset_scan(ds)
        wall, cpu, t.both_result = _timed(lambda: do_both(ds, NOW))
        check_both(ds, t.both_result)
        t.both.add(wall, cpu)
        reset_scan(ds)
    return t


def _settle(ds: DataSet) -> None:
    # Untimed, so every repetition starts alike: PostgreSQL vacuums the dead rows and index entries the last run
    # and the reset left; SQLite empties its WAL (otherwise an automatic checkpoint lands in some runs' commit).
    if ds.backend == "postgresql":
        with ds.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM step, reminder, notification, outbox")
    else:
        with ds.engine.connect() as conn:
            conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def reset_scan(ds: DataSet) -> None:
    """Undo a scan (and any routing): reminder, inbox and outbox rows deleted, the due steps' next look-up time
    put back."""
    with ds.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        for table in (outbox_t, notification_t, reminder_t):
            conn.execute(sa.delete(table))
        conn.execute(sa.update(step_t).where(step_t.c.id == sa.bindparam("b_id"))
                     .values(next_reminder_at=sa.bindparam("b_next")), ds.due_steps)
    _settle(ds)


def reset_route(ds: DataSet) -> None:
    """Undo a route: inbox and outbox rows deleted, the reminders unrouted again (routed_at NULL)."""
    with ds.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        for table in (outbox_t, notification_t):
            conn.execute(sa.delete(table))
        conn.execute(sa.update(reminder_t).where(reminder_t.c.routed_at.is_not(None)).values(routed_at=None))
    _settle(ds)


def do_scan(ds: DataSet, now: datetime) -> ScanResult:
    return scan(engine=ds.engine, resolve=ds.core.catalog.resolve, now=now)


def do_route(ds: DataSet, now: datetime) -> ScanResult:
    return route(engine=ds.engine, resolve=ds.core.catalog.resolve, public_url=PUBLIC_URL, now=now)


def do_both(ds: DataSet, now: datetime) -> ScanResult:
    """The scheduler's job as it runs: scan(), then route()."""
    return scheduler_run_scan(ds.core, now=now)


def _expect(ds: DataSet, what: str, result: ScanResult, want: tuple[int, ...]) -> None:
    got = (result.steps, result.reminders, result.notifications, result.outbox, result.unrouted)
    if got != want:
        raise SystemExit(f"{ds.label}: unexpected {what} result {result}; expected (steps, reminders, inbox, "
                         f"outbox, unrouted) = {want}")


def check_state(ds: DataSet, what: str, *, routed: bool) -> None:
    """The rows in the database after a scan (routed=False) or after scan and route (routed=True)."""
    expected = 2 * ds.due  # due_soon + due_now; each to the case's coordinator: one inbox row, one email
    with ds.engine.connect() as conn:
        def count(table: sa.Table, *where: Any) -> int:
            return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()

        got = {"reminders": count(reminder_t), "unrouted": count(reminder_t, reminder_t.c.routed_at.is_(None)),
               "inbox": count(notification_t), "outbox": count(outbox_t)}
    want = {"reminders": expected, "unrouted": 0 if routed else expected,
            "inbox": expected if routed else 0, "outbox": expected if routed else 0}
    if got != want:
        raise SystemExit(f"{ds.label}: after {what} the database holds {got}, expected {want}")


def check_scan(ds: DataSet, result: ScanResult) -> None:
    _expect(ds, "scan", result, (ds.due, 2 * ds.due, 0, 0, 0))
    check_state(ds, "scan", routed=False)


def check_route(ds: DataSet, result: ScanResult) -> None:
    _expect(ds, "route", result, (0, 0, 2 * ds.due, 2 * ds.due, 0))
    check_state(ds, "route", routed=True)


def check_both(ds: DataSet, result: ScanResult) -> None:
    _expect(ds, "scan + route", result, (ds.due, 2 * ds.due, 2 * ds.due, 2 * ds.due, 0))
    check_state(ds, "scan + route", routed=True)


@dataclass
class IdleTimings:
    scan: Runs = field(default_factory=Runs)
    both: Runs = field(default_factory=Runs)
    select: Runs = field(default_factory=Runs)
    scan_floor: Runs = field(default_factory=Runs)  # the idle scan's calls replayed on the bare driver
    both_floor: Runs = field(default_factory=Runs)  # the idle scan + route's calls, likewise


def idle_scans(sets: list[DataSet], reps: int) -> dict[str, IdleTimings]:
    """Nothing due: scan, scan + route, the bare select, and the driver replays of scan and of scan + route (their
    floor: the statements as recorded once, no SQLAlchemy, no Python logic) at IDLE_NOW, the data sets taking turns
    run by run."""
    calls: dict[str, tuple[list[Call], list[Call]]] = {}
    for ds in sets:
        reset_scan(ds)
        scan_calls, scanned = record(ds, lambda ds=ds: do_scan(ds, IDLE_NOW))
        both_calls, both = record(ds, lambda ds=ds: do_both(ds, IDLE_NOW))
        if scanned != ScanResult() or both != ScanResult():
            raise SystemExit(f"{ds.label}: something is due at {IDLE_NOW}")
        calls[ds.label] = scan_calls, both_calls
    out = {ds.label: IdleTimings() for ds in sets}
    query, args = due_steps_query(), {"now": IDLE_NOW, "batch": LIMIT}
    for _ in range(reps):
        for ds in sets:
            t = out[ds.label]
            scan_calls, both_calls = calls[ds.label]
            wall, cpu, _ = _timed(lambda ds=ds: do_scan(ds, IDLE_NOW))
            t.scan.add(wall, cpu)
            wall, cpu, _ = _timed(lambda ds=ds, c=scan_calls: replay(ds, c))
            t.scan_floor.add(wall, cpu)
            wall, cpu, _ = _timed(lambda ds=ds: do_both(ds, IDLE_NOW))
            t.both.add(wall, cpu)
            wall, cpu, _ = _timed(lambda ds=ds, c=both_calls: replay(ds, c))
            t.both_floor.add(wall, cpu)
            with ds.engine.connect() as conn:
                wall, cpu, _ = _timed(lambda conn=conn: conn.execute(query, args).all())
                t.select.add(wall, cpu)
    return out


# -- plans ----------------------------------------------------------------------------------------------------------


def _route_query(ds: DataSet) -> tuple[str, Any]:
    """The statement and parameters of route's first SELECT (reminders not yet routed), taken from a real route;
    left with the reminders raised and unrouted."""
    reset_scan(ds)
    do_scan(ds, NOW)
    calls, _ = record(ds, lambda: do_route(ds, NOW))
    reset_route(ds)
    return next((s, p) for s, p, _ in calls if s.lstrip().upper().startswith("SELECT") and "routed_at" in s)


def plans(ds: DataSet) -> list[tuple[str, str, str]]:
    """(name, plan text, the index it should use). The due queries on the state before a scan (``--due`` steps
    due), route's query on the state route meets (the reminders raised, none routed)."""
    lock = ds.backend == "postgresql"
    variants = [("bare due query", due_steps_query(), NOW)]
    if lock:
        variants.append(("scan's query (FOR UPDATE SKIP LOCKED)", due_steps_query(lock=True), NOW))
    variants.append(("nothing-due query (now before every next_reminder_at)", due_steps_query(lock=lock), IDLE_NOW))
    reset_scan(ds)
    out = []
    for name, q, now in variants:
        statement, params = _capture(ds.engine, lambda c, q=q, now=now: c.execute(q, {"now": now, "batch": LIMIT})
                                     .all())[0]
        out += _explain(ds, name, statement, params, "ix_step_next_reminder", analyze="FOR UPDATE" not in name)
    statement, params = _capture(ds.engine, lambda c: c.execute(unrouted_query(lock=lock), {"batch": LIMIT}).all())[0]
    out += _explain(ds, "route's query, nothing to route (as every scan without news meets it)", statement, params,
                    "ix_reminder_unrouted", analyze=True)
    statement, params = _route_query(ds)
    out += _explain(ds, f"route's query ({2 * ds.due:,} reminders raised, none routed)", statement, params,
                    "ix_reminder_unrouted", analyze=True)
    reset_scan(ds)
    return out


def _explain(ds: DataSet, name: str, statement: str, params: Any, index: str,
             analyze: bool) -> list[tuple[str, str, str]]:
    prefixes = (["EXPLAIN QUERY PLAN "] if ds.backend == "sqlite"
                else ["EXPLAIN ", "EXPLAIN (ANALYZE, BUFFERS) "][: 2 if analyze else 1])
    out = []
    for prefix in prefixes:
        with ds.engine.connect() as conn:  # rolled back: EXPLAIN ANALYZE of a FOR UPDATE query leaves no locks
            rows = conn.exec_driver_sql(prefix + statement, params).all()
            conn.rollback()
        if ds.backend == "sqlite":
            text = "\n".join(f"{'  ' * _depth(rows, r)}{r[-1]}" for r in rows)
        else:
            text = "\n".join(r[0] for r in rows)
        out.append((f"{name}: {prefix.strip()}", text, index))
    return out


def _depth(rows: list[Any], row: Any) -> int:
    parents = {r[0]: r[1] for r in rows}
    depth, parent = 0, row[1]
    while parent in parents:
        depth, parent = depth + 1, parents[parent]
    return depth


# -- profiling ------------------------------------------------------------------------------------------------------


def _area(filename: str, func: str) -> str:
    f = filename.replace("\\", "/")
    if "/pathway/store/scan.py" in f:
        return "pathway.store.scan (own code)"
    if "/pathway/reminders.py" in f or "/pathway/calendar.py" in f or "holidays" in f or "zoneinfo" in f:
        return "ladder: reminders/calendar/holidays"
    if "/pathway/" in f:
        return "pathway (other)"
    if "/sqlalchemy/" in f:
        return "sqlalchemy"
    if "psycopg" in f or "sqlite3" in func or f.startswith("~") and ("execute" in func or "fetch" in func
                                                                      or "commit" in func):
        return "driver (C / psycopg)"
    if "uuid" in f or "sha1" in func or "hashlib" in func or "uuid" in func:
        return "uuid5 / hashlib"
    if "json" in f or "json" in func:
        return "json"
    return "other (stdlib, builtins)"


def profile_scan(ds: DataSet, top: int = 14) -> list[str]:
    reset_scan(ds)
    prof = cProfile.Profile(time.process_time)  # CPU time: other load on the machine would smear wall time
    prof.enable()
    result = do_scan(ds, NOW)
    prof.disable()
    check_scan(ds, result)
    reset_scan(ds)
    stats = pstats.Stats(prof)
    total = stats.total_tt  # type: ignore[attr-defined]
    entries = stats.stats  # type: ignore[attr-defined]
    lines = [f"cProfile of one scan (raise only) on {ds.label} ({total * 1000:.1f} ms of this process's CPU time "
             "under the "
             "profiler, which inflates many small calls most; on PostgreSQL the server's own work is not in it, see "
             "the statement table)", "",
             "top functions by cumulative time:"]
    rows = sorted(entries.items(), key=lambda kv: kv[1][3], reverse=True)
    for (fname, line, func), (cc, nc, tt, ct, _callers) in rows[:top]:
        lines.append(f"  {ct * 1000:8.1f} ms cum {tt * 1000:7.1f} ms own {nc:7d} calls  {_short(fname)}:{line} {func}")
    lines += ["", "top functions by own time:"]
    for (fname, line, func), (cc, nc, tt, ct, _callers) in sorted(entries.items(), key=lambda kv: kv[1][2],
                                                                   reverse=True)[:top]:
        lines.append(f"  {tt * 1000:8.1f} ms own {nc:7d} calls  {_short(fname)}:{line} {func}")
    areas: dict[str, float] = defaultdict(float)
    for (fname, _line, func), (_cc, _nc, tt, _ct, _callers) in entries.items():
        areas[_area(fname, func)] += tt
    lines += ["", "own time by area:"]
    for area, tt in sorted(areas.items(), key=lambda kv: kv[1], reverse=True):
        lines.append(f"  {tt * 1000:8.1f} ms  {100 * tt / total:5.1f}%  {area}")
    return lines


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def _kind(statement: str) -> str:
    s = " ".join(statement.split())
    verb = s.split(" ", 1)[0].upper()
    if verb == "SELECT":
        found = re.search(r"\bFROM\s+(\w+)(\s+JOIN\s+(\w+))?", s, re.I)
        if found is None:
            return s[:30]
        return f"SELECT {found.group(1)}" + (f" JOIN {found.group(3)}" if found.group(3) else "")
    found = re.match(r"(INSERT INTO|UPDATE|DELETE FROM)\s+(\w+)", s, re.I)
    return f"{found.group(1).upper()} {found.group(2)}" if found else s[:30]


def statement_breakdown(ds: DataSet, prepare: Callable[[], Any],
                        run: Callable[[], Any]) -> tuple[float, list[tuple[str, int, float]]]:
    """Wall time of one ``run`` (after an untimed ``prepare``) and, per kind of statement, how many driver calls
    and how long they took (cursor execute up to the end of fetching, as SQLAlchemy reports it), plus commit."""
    prepare()
    timing: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    started: list[float] = []

    def before(_c, _cur, statement, _p, ctx, _many):  # type: ignore[no-untyped-def]
        started.append(time.perf_counter())

    def after(_c, _cur, statement, _p, _ctx, _many):  # type: ignore[no-untyped-def]
        entry = timing[_kind(statement)]
        entry[0] += 1
        entry[1] += time.perf_counter() - started.pop()

    dialect = ds.engine.dialect
    original_commit = dialect.do_commit

    def timed_commit(dbapi_conn: Any) -> None:
        t0 = time.perf_counter()
        original_commit(dbapi_conn)
        entry = timing["COMMIT"]
        entry[0] += 1
        entry[1] += time.perf_counter() - t0

    event.listen(ds.engine, "before_cursor_execute", before)
    event.listen(ds.engine, "after_cursor_execute", after)
    dialect.do_commit = timed_commit  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        run()
        wall = (time.perf_counter() - t0) * 1000
    finally:
        event.remove(ds.engine, "before_cursor_execute", before)
        event.remove(ds.engine, "after_cursor_execute", after)
        del dialect.do_commit
    reset_scan(ds)
    return wall, sorted(((k, int(v[0]), v[1] * 1000) for k, v in timing.items()), key=lambda r: -r[2])


def gc_effect(ds: DataSet, reps: int) -> tuple[float, float]:
    on, off = [], []
    for _ in range(reps):
        reset_scan(ds)
        on.append(_timed(lambda: do_scan(ds, NOW))[0])
        reset_scan(ds)
        gc.collect()
        gc.disable()
        try:
            off.append(_timed(lambda: do_scan(ds, NOW))[0])
        finally:
            gc.enable()
    reset_scan(ds)
    return statistics.median(on), statistics.median(off)


# -- output ---------------------------------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def ms(x: float) -> str:
    return f"{x:,.2f} ms" if x < 100 else f"{x:,.0f} ms"


# -- main -----------------------------------------------------------------------------------------------------------


def admin_url(pg_url: str | None) -> str:
    return normalise_url(pg_url or os.environ.get("FORLOP_TEST_POSTGRES_URL") or DEFAULT_PG)


def run_backend(backend: str, args: argparse.Namespace, workdir: Path, made: Made) -> dict[str, Any]:
    small_open = max(OPEN_PER_CASE, args.open_steps // 100)
    sizes = [("N", args.open_steps, args.due), ("N/100", small_open, args.due)]
    sets: list[DataSet] = []
    try:
        for i, (tag, n_open, due) in enumerate(sizes):
            label = f"{backend} {tag}"
            if backend == "sqlite":
                path = workdir / f"scan_{tag.replace('/', '_')}.db"
                url = f"sqlite:///{path}"
            else:
                path = None
                url = made.database(admin_url(args.pg_url), f"forlop_bench_scan_{os.getpid()}_{i}")
            sets.append(build(label, url, open_steps=n_open, due=due, seed=42 + i, path=path))

        out: dict[str, Any] = {"sets": sets, "rows": {}, "plans": plans(sets[0])}
        if backend == "postgresql":
            with sets[0].engine.connect() as conn:
                out["server"] = conn.exec_driver_sql("SHOW server_version").scalar()
        for ds in sets:
            log(f"{ds.label}: timing select ×{args.select_reps}, scan, route, their driver replays and scan + route "
                f"×{args.scan_reps}, taking turns")
            out["rows"][ds.label] = measure_due(ds, args.select_reps, args.scan_reps)
        log(f"{backend}: nothing-due scans ×{args.idle_reps}, both sizes taking turns")
        out["idle"] = idle_scans(sets, args.idle_reps)
        big: DueTimings = out["rows"][sets[0].label]
        ratio = big.scan.med / big.select.med
        if args.profile == "always" or (args.profile == "auto" and ratio > 2):
            log(f"{sets[0].label}: profiling one scan")
            ds = sets[0]
            out["breakdown"] = [
                ("scan (raise only)", *statement_breakdown(ds, lambda: reset_scan(ds), lambda: do_scan(ds, NOW))),
                ("route", *statement_breakdown(ds, lambda: (reset_scan(ds), do_scan(ds, NOW), reset_route(ds)),
                                               lambda: do_route(ds, NOW))),
            ]
            out["gc"] = gc_effect(ds, 3)
            out["profile"] = profile_scan(ds)
        out["load_avg"] = os.getloadavg()
        return out
    finally:
        for ds in sets:
            ds.core.close()
        made.remove()  # this backend's databases, before the next backend's are made


def report(backend: str, out: dict[str, Any], args: argparse.Namespace) -> None:
    sets: list[DataSet] = out["sets"]
    big, small = sets
    print(f"\n=== {backend} " + "=" * 80)
    print("load average at the end of this backend's timings: " + ", ".join(f"{x:.1f}" for x in out["load_avg"])
          + f" ({os.cpu_count()} CPUs): other work on the machine inflates every figure alike")
    if backend == "sqlite":
        print(f"SQLite {sqlite3.sqlite_version}, WAL, "
              f"synchronous={big.core.settings.sqlite_synchronous} for the timings (OFF only for the load)")
    else:
        print(f"PostgreSQL {out['server']} (loopback), synchronous_commit on for the timings (off for the load)")
    print()
    print(table(["data set", "cases", "open steps", "completed steps", "due", "load"],
                [[ds.label, f"{ds.cases:,}", f"{ds.open_steps:,}", f"{ds.open_steps:,}", f"{ds.due:,}",
                  f"{ds.load_seconds:.1f} s"] for ds in sets]))
    print()
    rows, context = [], []
    for ds in sets:
        t: DueTimings = out["rows"][ds.label]
        res = t.scan_result
        assert res is not None
        sel, scn = t.select.med, t.scan.med
        rows.append([ds.label, f"{t.rows:,}", ms(sel), ms(scn), f"{scn / sel:.1f}x",
                     f"{res.steps:,} / {res.reminders:,}", f"{1000 * scn / max(1, res.reminders):.0f} µs",
                     f"{1000 * (scn - sel) / max(1, res.reminders):.0f} µs"])
        context.append([ds.label, ms(t.select_driver.med), f"{ms(t.scan_replay.med)} (CPU {ms(t.scan_replay.med_cpu)})",
                        f"{t.scan_replay.med / sel:.1f}x", f"{scn / t.scan_replay.med:.1f}x", ms(t.select.med_cpu),
                        ms(t.scan.med_cpu), f"{t.scan.med_cpu / max(1e-9, t.select.med_cpu):.1f}x"])
    print(f"(a) due SELECT (LIMIT {LIMIT}, median of {args.select_reps}) vs (b) scan() raising the reminders of those "
          f"steps (raise only, no routing; median of {args.scan_reps}); the issue's target is scan/select <= 2x")
    print(table(["data set", "rows", "(a) select", "(b) scan", "scan/select", "steps / reminders raised",
                 "scan per reminder", "(scan - select) per reminder"], rows))
    print("  select: execute + fetch through Core on an open read transaction; scan: scan() from call to return "
          "(its connections, transactions and commits included; with exactly 1,000 due it also runs a second, "
          "empty batch). Taken in turns; before each scan its reminder rows are deleted and next_reminder_at put "
          "back.")
    print()
    print("The same runs in context: the floor under SQLAlchemy and the Python logic, and CPU time")
    print(table(["data set", "select on driver", "scan's SQL on driver", "SQL floor/select", "scan/SQL floor",
                 "client CPU: select", "client CPU: scan", "CPU scan/select"], context))
    print("  on driver: the same statements, parameters, row counts and commits (recorded from a scan) sent "
          "through the bare DBAPI connection, no SQLAlchemy, no Python logic. client CPU: CPU time of this "
          "process, less smeared by other load than wall time (on SQLite it includes the database engine; on "
          "PostgreSQL the server's work is not in it).")
    for ds in sets:
        t = out["rows"][ds.label]
        print(f"  {ds.label}: scan runs " + ", ".join(ms(x) for x in t.scan.wall)
              + "; select runs " + ", ".join(ms(x) for x in t.select.wall))
    print()
    rows = []
    for ds in sets:
        t = out["rows"][ds.label]
        res = t.route_result
        assert res is not None
        rte, written = t.route.med, res.notifications + res.outbox
        rows.append([ds.label, f"{t.scan_result.reminders:,}", f"{res.notifications:,} / {res.outbox:,}",
                     f"{res.unrouted:,}", ms(rte), f"{1000 * rte / max(1, t.scan_result.reminders):.0f} µs",
                     f"{1000 * rte / max(1, written):.0f} µs",
                     f"{ms(t.route_replay.med)} (CPU {ms(t.route_replay.med_cpu)})",
                     f"{rte / t.route_replay.med:.1f}x", ms(t.route.med_cpu),
                     f"{1000 * t.route.med_cpu / max(1, written):.0f} µs"])
    print(f"(c) route() of the reminders that scan raised (median of {args.scan_reps}; before each, inbox/outbox "
          "rows deleted and routed_at set back to NULL)")
    print(table(["data set", "reminders routed", "inbox / outbox rows written", "unrouted", "(c) route",
                 "per reminder", "per row written", "route's SQL on driver", "route/SQL floor", "client CPU: route",
                 "CPU per row written"], rows))
    print(f"  route runs in batches of {LIMIT}: with 2,000 reminders that is two full batches and a third, empty one.")
    for ds in sets:
        t = out["rows"][ds.label]
        print(f"  {ds.label}: route runs " + ", ".join(ms(x) for x in t.route.wall))
    print()
    rows = []
    for ds in sets:
        t = out["rows"][ds.label]
        res = t.both_result
        assert res is not None
        rows.append([ds.label, ms(t.scan.med), ms(t.route.med), ms(t.scan.med + t.route.med), ms(t.both.med),
                     f"{t.both.med / t.select.med:.1f}x", f"{1000 * t.both.med / max(1, res.reminders):.0f} µs",
                     ms(t.both.med_cpu),
                     f"{res.steps:,} / {res.reminders:,} / {res.notifications:,} / {res.outbox:,} / {res.unrouted}"])
    print(f"(d) scan + route together: pathway.scheduler.run_scan (scan(), then route(); median of {args.scan_reps})")
    print(table(["data set", "(b) scan", "(c) route", "(b) + (c)", "(d) scan + route", "(d)/select",
                 "(d) per reminder", "client CPU: (d)", "steps / reminders / inbox / outbox / unrouted"], rows))
    for ds in sets:
        t = out["rows"][ds.label]
        print(f"  {ds.label}: scan + route runs " + ", ".join(ms(x) for x in t.both.wall))
    print()
    idle = out["idle"]
    b, s = idle[big.label], idle[small.label]
    print(f"(e) nothing due (now = {IDLE_NOW:%Y-%m-%d %H:%M}Z, before every next_reminder_at; "
          f"median of {args.idle_reps}, the two sizes taking turns; wall, and this process's CPU)")
    print(table(["", f"{big.open_steps:,} open (N)", f"{small.open_steps:,} open (N/100)", "N / (N/100)",
                 "CPU at N", "CPU at N/100"],
                [[label, ms(x.med), ms(y.med), f"{x.med / y.med:.2f}x", ms(x.med_cpu), ms(y.med_cpu)]
                 for label, x, y in (("scan (connect, BEGIN, SELECT, COMMIT)", b.scan, s.scan),
                                     ("  its SQL on the driver (floor)", b.scan_floor, s.scan_floor),
                                     ("scan + route (run_scan: two such transactions)", b.both, s.both),
                                     ("  its SQL on the driver (floor)", b.both_floor, s.both_floor),
                                     ("bare SELECT (Core)", b.select, s.select))]))
    print(f"  against the floor at N: scan {b.scan.med / b.scan_floor.med:.2f}x, scan + route "
          f"{b.both.med / b.both_floor.med:.2f}x (the floor: the calls of one idle run, recorded once, replayed on "
          "the bare DBAPI connection from the pool)")
    print()
    print(f"Query plans on {big.label}:")
    for name, text, index in out["plans"]:
        print(f"-- {name}")
        print("   " + text.replace("\n", "\n   "))
        print(f"   => {'uses' if index in text else 'does NOT use'} the partial index {index}")
    for name, wall, parts in out.get("breakdown", []):
        print()
        print(f"One {name} on {big.label} by statement ({ms(wall)} wall; driver time per statement, as SQLAlchemy "
              "sees it from cursor execute to its return, plus commit):")
        accounted = sum(p[2] for p in parts)
        print(table(["statement", "calls", "time", "share of wall"],
                    [[k, str(n), ms(t), f"{100 * t / wall:.0f}%"] for k, n, t in parts]
                    + [[f"rest: Python in {name.split()[0]}, SQLAlchemy, connect", "", ms(wall - accounted),
                        f"{100 * (wall - accounted) / wall:.0f}%"]]))
    if "gc" in out:
        on, off = out["gc"]
        print(f"\nThe same scan (raise only) with the cyclic garbage collector on / off (median of 3 each): "
              f"{ms(on)} / {ms(off)}")
    if "profile" in out:
        print()
        print("\n".join(out["profile"]))


def summary_rows(backend: str, out: dict[str, Any]) -> list[list[str]]:
    """One backend's lines of the closing side-by-side table: the issue's two targets."""
    big, small = out["sets"]
    b, s = out["idle"][big.label], out["idle"][small.label]
    due: DueTimings = out["rows"][big.label]
    return [
        [backend, "empty scan + route: N vs N/100", ms(b.both.med), ms(s.both.med), f"{b.both.med / s.both.med:.2f}x",
         "<= 1.2x", f"CPU {b.both.med_cpu / max(1e-9, s.both.med_cpu):.2f}x"],
        [backend, "empty scan: N vs N/100", ms(b.scan.med), ms(s.scan.med), f"{b.scan.med / s.scan.med:.2f}x",
         "<= 1.2x", f"CPU {b.scan.med_cpu / max(1e-9, s.scan.med_cpu):.2f}x"],
        [backend, "empty scan vs its SQL floor (N)", ms(b.scan.med), ms(b.scan_floor.med),
         f"{b.scan.med / b.scan_floor.med:.2f}x", "<= 1.5x", ""],
        [backend, "empty scan + route vs its SQL floor (N)", ms(b.both.med), ms(b.both_floor.med),
         f"{b.both.med / b.both_floor.med:.2f}x", "<= 1.5x", ""],
        [backend, f"scan of {due.scan_result.steps if due.scan_result else 0:,} due steps vs its SQL floor (N)",
         ms(due.scan.med), ms(due.scan_replay.med), f"{due.scan.med / due.scan_replay.med:.2f}x", "<= 1.5x", ""],
    ]


def main(made: Made) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--open-steps", type=int, default=1_000_000, help="open steps in the large set (N)")
    parser.add_argument("--due", type=int, default=1000, help="open steps whose next rung has come")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=None, help=f"a server that lets us CREATE DATABASE (default {DEFAULT_PG}"
                        " or FORLOP_TEST_POSTGRES_URL)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20k open steps, fewer repetitions")
    parser.add_argument("--select-reps", type=int, default=15)
    parser.add_argument("--scan-reps", type=int, default=5, help="repetitions of scan, route and scan + route")
    parser.add_argument("--idle-reps", type=int, default=21)
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="profile one scan: when scan/select > 2x (auto), always or never")
    parser.add_argument("--workdir", type=Path, default=None, help="where the SQLite files go (removed at the end)")
    args = parser.parse_args()
    if args.quick:
        args.open_steps = 20_000
        args.select_reps, args.scan_reps, args.idle_reps = 7, 3, 11
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in backends:
        if b not in ("sqlite", "postgresql"):
            parser.error(f"unknown backend {b!r}")
    print(f"Reminder-scan benchmark, {time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
          f"SQLAlchemy {sa.__version__}, {os.cpu_count()} CPUs; now = {NOW:%Y-%m-%d %H:%M}Z")
    print(f"N = {args.open_steps:,} open steps (+ as many completed), {args.due:,} due; argv: {' '.join(sys.argv[1:])}")
    started = time.perf_counter()
    summary: list[list[str]] = []
    for backend in backends:
        t0 = time.perf_counter()
        workdir = made.temp_dir("forlop_bench_scan_", args.workdir)
        out = run_backend(backend, args, workdir, made)  # removes what it made (workdir too) when it ends
        report(backend, out, args)
        summary += summary_rows(backend, out)
        print(f"\n({backend}: {time.perf_counter() - t0:.0f} s including the loads)")
    print("\n=== both backends side by side (medians; wall time, this process's CPU where said) " + "=" * 30)
    print(table(["backend", "what", "at N", "at N/100 / floor", "ratio", "target", "CPU ratio"], summary))
    print("load average now: " + ", ".join(f"{x:.1f}" for x in os.getloadavg()) + f" ({os.cpu_count()} CPUs)")
    print(f"\nTotal {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    cleanup.run(main)
