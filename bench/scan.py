#!/usr/bin/env python
"""Reminder-scan benchmark: the scan's indexed question against the whole scan, at scale, on each backend.

Run from the repository root (``.venv/bin/python bench/scan.py``; ``--quick`` for a 20k smoke run). It prints
figures and never asserts on time. Per backend, in one run:

1. Build two data sets with bulk inserts (SQLAlchemy Core executemany in chunks of 10k on SQLite with
   ``synchronous=OFF`` for the load only; COPY on PostgreSQL), not through the services: ``--open-steps`` N
   open steps (N/10 cases in phase "support", ten open and ten completed steps each, so as many completed steps
   as open ones) and a second set with N/100 open steps. Exactly ``--due`` open steps (K3, owner coordinator,
   default ladder) have ``next_reminder_at <= now`` and ``due_at = now - 2..3 h``, so two rungs are crossed
   (due_soon, due_now); every other open step is due days ahead. One coordinator and one manager per unit (with
   email) and a partner contact per agency, so every reminder routes. ANALYZE (SQLite) / VACUUM ANALYZE
   (PostgreSQL) afterwards.
2. Time (a) the bare ``due_steps_query(now, 1000)`` executed and fetched through Core (and through the bare
   driver, for reference), (b) one full ``scan`` that raises the reminders of those steps (state restored between
   repetitions: reminder/notification/outbox rows deleted, the steps' ``next_reminder_at`` put back; PostgreSQL
   also VACUUMs those tables, untimed), with the ratio scan/select and the cost per reminder, and (c) a scan
   with nothing due (``now`` earlier than every ``next_reminder_at``), at N and at N/100 side by side.
3. Print the query plans of the due query (EXPLAIN QUERY PLAN / EXPLAIN, and EXPLAIN ANALYZE on PostgreSQL).

When scan/select misses its 2x target, one scan is profiled with cProfile (``--profile always|never``
overrides), and one is broken down by SQL statement (driver time per statement and commit).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import itertools
import json
import os
import platform
import pstats
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
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
from pathway.settings import Settings
from pathway.store.engine import WRITE, normalise_url
from pathway.store.scan import ScanResult, due_steps_query, scan
from pathway.store.tables import case_t, notification_t, outbox_t, reminder_t, step_t, user_t

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


def _case_rows(n_cases: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    opened = NOW - timedelta(days=30)
    for i in range(n_cases):
        unit = i % UNITS
        yield {"id": _uuid(rng), "reference": f"BEN-2026-{i:07d}", "pathway_id": PATHWAY, "definition_version": 1,
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
            due_at = created + timedelta(days=1 + k, minutes=rng.randrange(600))
            ended = due_at - timedelta(minutes=rng.randrange(1, 1200))
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
                due_at = NOW + timedelta(days=2, minutes=rng.randrange(60 * 24 * 60))
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


def _bind_processors(table: sa.Table, names: tuple[str, ...], dialect: sa.Dialect) -> list[Callable[[Any], Any] | None]:
    """Core's own bind processors per column (so values are stored exactly as the engine stores them); those of
    timestamp columns memoized, as a data set has few distinct timestamps."""
    procs: list[Callable[[Any], Any] | None] = []
    for name in names:
        col_type = table.c[name].type
        proc = col_type.dialect_impl(dialect).bind_processor(dialect)
        if proc is not None and isinstance(getattr(col_type, "impl_instance", col_type), sa.DateTime):
            proc = _memoized(proc)
        procs.append(proc)
    return procs


def _memoized(proc: Callable[[Any], Any]) -> Callable[[Any], Any]:
    memo: dict[Any, Any] = {}

    def process(value: Any) -> Any:
        try:
            return memo[value]
        except KeyError:
            memo[value] = out = proc(value)
            return out

    return process


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
            procs = _bind_processors(table, order, conn.dialect)
            pairs = list(zip(order, procs, strict=True))
            sql = str(compiled)
            ids: list[uuid.UUID] = []
            done = 0
            cur = raw.cursor()
            for chunk in _chunks(itertools.chain([first], rows)):
                raw.execute("BEGIN")
                cur.executemany(sql, [tuple(row[n] if p is None else p(row[n]) for n, p in pairs) for row in chunk])
                raw.execute("COMMIT")
                ids.extend(row["id"] for row in chunk)
                done += len(chunk)
                if total and (done % 500_000 == 0 or done == total):
                    log(f"  {ds.label}: {done:,}/{total:,} {table.name} rows")
            cur.close()
            return ids

        case_ids = insert(case_t, _case_rows(ds.cases, rng))
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
        case_ids = copy(case_t, _case_rows(ds.cases, rng))
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


def _median_ms(fn: Callable[[], Any], reps: int, *, between: Callable[[], Any] | None = None) -> tuple[float, list[float]]:
    times = []
    for _ in range(reps):
        if between is not None:
            between()
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), times


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


def select_due(ds: DataSet, now: datetime, reps: int) -> tuple[float, float, int]:
    """(Core median ms, bare-driver median ms, rows): execute + fetch within one open read connection."""
    query = due_steps_query(now, LIMIT)
    with ds.engine.connect() as conn:
        rows = len(conn.execute(query).all())  # warm-up (compiled cache, prepared statement, page cache)
        core_ms, _ = _median_ms(lambda: conn.execute(query).all(), reps)
        conn.rollback()
    statement, params = _capture(ds.engine, lambda c: c.execute(query).all())[0]
    with ds.engine.connect() as conn:
        cur = conn.connection.driver_connection.cursor()
        cur.execute(statement, params)
        cur.fetchall()
        raw_ms, _ = _median_ms(lambda: (cur.execute(statement, params), cur.fetchall()), reps)
        cur.close()
        conn.rollback()
    return core_ms, raw_ms, rows


def restore(ds: DataSet) -> None:
    """Undo a scan: its reminder, inbox and outbox rows away, the due steps' next look-up time back."""
    with ds.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        for table in (outbox_t, notification_t, reminder_t):
            conn.execute(sa.delete(table))
        conn.execute(sa.update(step_t).where(step_t.c.id == sa.bindparam("b_id"))
                     .values(next_reminder_at=sa.bindparam("b_next")), ds.due_steps)
    # Untimed, so every repetition starts alike: PostgreSQL vacuums the dead rows and index entries the last scan
    # and this restore left; SQLite empties its WAL (otherwise an automatic checkpoint lands in some scans' commit).
    if ds.backend == "postgresql":
        with ds.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM step, reminder, notification, outbox")
    else:
        with ds.engine.connect() as conn:
            conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def run_scan(ds: DataSet, now: datetime) -> ScanResult:
    return scan(engine=ds.engine, resolve=ds.core.catalog.resolve, public_url=PUBLIC_URL, now=now)


def check(ds: DataSet, result: ScanResult) -> None:
    expected = 2 * ds.due  # due_soon + due_now; each to the case's coordinator: one inbox row, one email
    got = (result.steps, result.reminders, result.notifications, result.outbox, result.unrouted)
    if got != (ds.due, expected, expected, expected, 0):
        raise SystemExit(f"{ds.label}: unexpected scan result {result} (expected {ds.due} steps, "
                         f"{expected} reminders/notifications/outbox, 0 unrouted)")


def full_scan(ds: DataSet, reps: int) -> tuple[float, list[float], ScanResult]:
    restore(ds)
    warm = run_scan(ds, NOW)  # warm-up
    check(ds, warm)
    results: list[ScanResult] = []

    def one() -> None:
        results.append(run_scan(ds, NOW))

    med, times = _median_ms(one, reps, between=lambda: restore(ds))
    for r in results:
        check(ds, r)
    restore(ds)
    return med, times, results[-1]


def idle_scans(sets: list[DataSet], reps: int) -> dict[str, tuple[float, float]]:
    """Nothing due: scan and bare select at IDLE_NOW, the data sets taking turns run by run."""
    for ds in sets:
        restore(ds)
        if run_scan(ds, IDLE_NOW).steps != 0:
            raise SystemExit(f"{ds.label}: something is due at {IDLE_NOW}")
    scans: dict[str, list[float]] = defaultdict(list)
    selects: dict[str, list[float]] = defaultdict(list)
    query = due_steps_query(IDLE_NOW, LIMIT)
    for _ in range(reps):
        for ds in sets:
            gc.collect()
            t0 = time.perf_counter()
            run_scan(ds, IDLE_NOW)
            scans[ds.label].append((time.perf_counter() - t0) * 1000)
            with ds.engine.connect() as conn:
                t0 = time.perf_counter()
                conn.execute(query).all()
                selects[ds.label].append((time.perf_counter() - t0) * 1000)
    return {ds.label: (statistics.median(scans[ds.label]), statistics.median(selects[ds.label])) for ds in sets}


# -- plans ----------------------------------------------------------------------------------------------------------


def plans(ds: DataSet) -> list[tuple[str, str]]:
    query = due_steps_query(NOW, LIMIT)
    out = []
    variants = [("bare due query", query)]
    if ds.backend == "postgresql":
        variants.append(("scan's query (FOR UPDATE OF step SKIP LOCKED)",
                         query.with_for_update(of=step_t, skip_locked=True)))
    for name, q in variants:
        statement, params = _capture(ds.engine, lambda c, q=q: c.execute(q).all())[0]
        prefixes = (["EXPLAIN QUERY PLAN "] if ds.backend == "sqlite"
                    else ["EXPLAIN ", "EXPLAIN (ANALYZE, BUFFERS) "][: 2 if q is query else 1])
        for prefix in prefixes:
            with ds.engine.connect() as conn:
                rows = conn.exec_driver_sql(prefix + statement, params).all()
                conn.rollback()
            if ds.backend == "sqlite":
                text = "\n".join(f"{'  ' * _depth(rows, r)}{r[-1]}" for r in rows)
            else:
                text = "\n".join(r[0] for r in rows)
            out.append((f"{name}: {prefix.strip()}", text))
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
    restore(ds)
    prof = cProfile.Profile()
    prof.enable()
    run_scan(ds, NOW)
    prof.disable()
    restore(ds)
    stats = pstats.Stats(prof)
    total = stats.total_tt  # type: ignore[attr-defined]
    entries = stats.stats  # type: ignore[attr-defined]
    lines = [f"cProfile of one scan on {ds.label} ({total * 1000:.1f} ms under the profiler)", "",
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


def statement_breakdown(ds: DataSet) -> tuple[float, list[tuple[str, int, float]]]:
    """Wall time of one scan and, per kind of statement, how many driver calls and how long they took
    (cursor execute up to the end of fetching, as SQLAlchemy reports it), plus commit."""
    restore(ds)
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
        run_scan(ds, NOW)
        wall = (time.perf_counter() - t0) * 1000
    finally:
        event.remove(ds.engine, "before_cursor_execute", before)
        event.remove(ds.engine, "after_cursor_execute", after)
        del dialect.do_commit
    restore(ds)
    return wall, sorted(((k, int(v[0]), v[1] * 1000) for k, v in timing.items()), key=lambda r: -r[2])


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


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    small_open = max(OPEN_PER_CASE, args.open_steps // 100)
    sizes = [("N", args.open_steps, args.due), ("N/100", small_open, args.due)]
    created_pg: list[str] = []
    sets: list[DataSet] = []
    admin = None
    try:
        if backend == "postgresql":
            admin = sa.create_engine(admin_url(args.pg_url), isolation_level="AUTOCOMMIT")
        for i, (tag, n_open, due) in enumerate(sizes):
            label = f"{backend} {tag}"
            if backend == "sqlite":
                path = workdir / f"scan_{tag.replace('/', '_')}.db"
                url = f"sqlite:///{path}"
            else:
                assert admin is not None
                name = f"forlop_bench_scan_{os.getpid()}_{i}"
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
                created_pg.append(name)
                path = None
                url = admin.url.set(database=name).render_as_string(hide_password=False)
            sets.append(build(label, url, open_steps=n_open, due=due, seed=42 + i, path=path))

        out: dict[str, Any] = {"sets": sets, "rows": {}, "plans": plans(sets[0])}
        if backend == "postgresql":
            with sets[0].engine.connect() as conn:
                out["server"] = conn.exec_driver_sql("SHOW server_version").scalar()
        for ds in sets:
            log(f"{ds.label}: timing select ×{args.select_reps}, scan ×{args.scan_reps}")
            sel_core, sel_raw, n_rows = select_due(ds, NOW, args.select_reps)
            scan_med, scan_times, result = full_scan(ds, args.scan_reps)
            out["rows"][ds.label] = {"select": sel_core, "select_raw": sel_raw, "rows": n_rows, "scan": scan_med,
                                     "scan_times": scan_times, "result": result}
        log(f"{backend}: nothing-due scans ×{args.idle_reps}, both sizes taking turns")
        out["idle"] = idle_scans(sets, args.idle_reps)
        big = out["rows"][sets[0].label]
        ratio = big["scan"] / big["select"]
        if args.profile == "always" or (args.profile == "auto" and ratio > 2):
            log(f"{sets[0].label}: profiling one scan")
            out["breakdown"] = statement_breakdown(sets[0])
            out["profile"] = profile_scan(sets[0])
        return out
    finally:
        for ds in sets:
            ds.core.close()
        if admin is not None:
            with admin.connect() as conn:
                for name in created_pg:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()


def report(backend: str, out: dict[str, Any], args: argparse.Namespace) -> None:
    sets: list[DataSet] = out["sets"]
    big, small = sets
    print(f"\n=== {backend} " + "=" * 80)
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
    rows = []
    for ds in sets:
        r = out["rows"][ds.label]
        res: ScanResult = r["result"]
        rows.append([ds.label, f"{r['rows']:,}", ms(r["select"]), ms(r["select_raw"]), ms(r["scan"]),
                     f"{r['scan'] / r['select']:.1f}x", f"{res.reminders:,} / {res.notifications:,} / {res.outbox:,}",
                     f"{1000 * r['scan'] / max(1, res.reminders):.0f} µs",
                     f"{1000 * (r['scan'] - r['select']) / max(1, res.reminders):.0f} µs"])
    print(f"(a) due SELECT (LIMIT {LIMIT}, median of {args.select_reps}) vs (b) full scan raising the reminders "
          f"(median of {args.scan_reps}; target scan/select <= 2x)")
    print(table(["data set", "rows", "(a) select, Core", "select, driver", "(b) scan", "scan/select",
                 "reminders / inbox / outbox", "scan per reminder", "(scan-select) per reminder"], rows))
    for ds in sets:
        print(f"  {ds.label} scan runs: " + ", ".join(ms(t) for t in out["rows"][ds.label]["scan_times"]))
    print()
    idle = out["idle"]
    (b_scan, b_sel), (s_scan, s_sel) = idle[big.label], idle[small.label]
    print(f"(c) nothing due (now = {IDLE_NOW:%Y-%m-%d %H:%M}Z, before every next_reminder_at; "
          f"median of {args.idle_reps}, the two sizes taking turns)")
    print(table(["", f"{big.open_steps:,} open (N)", f"{small.open_steps:,} open (N/100)", "N / (N/100)"],
                [["scan (connect, BEGIN, SELECT, COMMIT)", ms(b_scan), ms(s_scan), f"{b_scan / s_scan:.2f}x"],
                 ["bare SELECT (Core)", ms(b_sel), ms(s_sel), f"{b_sel / s_sel:.2f}x"]]))
    print()
    print(f"Query plans on {big.label}:")
    for name, text in out["plans"]:
        print(f"-- {name}")
        print("   " + text.replace("\n", "\n   "))
        if "ix_step_next_reminder" in text:
            print("   => uses the partial index ix_step_next_reminder")
        else:
            print("   => does NOT use ix_step_next_reminder")
    if "breakdown" in out:
        wall, parts = out["breakdown"]
        print()
        print(f"One scan on {big.label} by statement ({ms(wall)} wall; driver time per statement, as SQLAlchemy "
              "sees it from cursor execute to its return, plus commit):")
        accounted = sum(p[2] for p in parts)
        print(table(["statement", "calls", "time", "share of wall"],
                    [[k, str(n), ms(t), f"{100 * t / wall:.0f}%"] for k, n, t in parts]
                    + [["rest: Python in scan, SQLAlchemy, connect", "", ms(wall - accounted),
                        f"{100 * (wall - accounted) / wall:.0f}%"]]))
    if "profile" in out:
        print()
        print("\n".join(out["profile"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--open-steps", type=int, default=1_000_000, help="open steps in the large set (N)")
    parser.add_argument("--due", type=int, default=1000, help="open steps whose next rung has come")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=None, help=f"a server that lets us CREATE DATABASE (default {DEFAULT_PG}"
                        " or FORLOP_TEST_POSTGRES_URL)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20k open steps, fewer repetitions")
    parser.add_argument("--select-reps", type=int, default=15)
    parser.add_argument("--scan-reps", type=int, default=5)
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
    workdir = Path(tempfile.mkdtemp(prefix="forlop_bench_scan_", dir=args.workdir))
    started = time.perf_counter()
    try:
        for backend in backends:
            t0 = time.perf_counter()
            out = run_backend(backend, args, workdir)
            report(backend, out, args)
            print(f"\n({backend}: {time.perf_counter() - t0:.0f} s including the loads)")
            for f in workdir.glob("*"):
                f.unlink()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nTotal {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
