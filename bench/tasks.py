#!/usr/bin/env python
"""A partner's task list as the number of tasks grows: the first page, a page deep in the list by cursor, the
counts, and the same deep pages fetched with OFFSET instead.

Run from the repository root (``.venv/bin/python bench/tasks.py``; ``--quick`` for a smoke run). It prints figures
and never asserts on time. For each backend (SQLite, PostgreSQL) and each size N (default 1,000 and 10,000 NAV
tasks; ``--quick`` 500 and 2,000) it:

1. Makes a database of its own (a SQLite file in a temporary folder, or ``forlop_bench_<pid>_tasks_*`` on
   PostgreSQL, dropped at the end) and one real case through the services: a coordinator with a work phone, a person
   record, the threat level, consents to NAV and the police, and handovers K7 (NAV, with a note) and K6 (police).
2. Copies that case's rows N - 1 times straight into the tables, with new ids and references: ``pathway_case`` (the
   same registered definition, coordinator and consents), ``person`` (sealed for its own case, so the view decrypts
   every name it shows), and two ``handover_task`` rows (NAV's K7, and the police's K6, so that the list has
   another agency's tasks to pass over). Deadlines are spread from 20 days ago to 15 days ahead of now; 80 % of the
   tasks are open (requested or accepted), the rest completed or declined with a reply. Then ANALYZE.
3. Follows the cursors through NAV's whole list once (untimed) and keeps the cursor of the middle page and of the
   last, then times, the databases taking turns (p50 and p95 of ``--reps`` runs, each in a unit of work as the API
   opens it, ``snapshot=True``; only the call is timed): ``task_page`` for the first page, the middle page and the
   last page by cursor; ``task_counts``; and the middle and last pages as plain SQL (the view's own select, joins and
   ORDER BY, fetched only), once with the cursor's WHERE and once with OFFSET. The OFFSET pages are checked to hold
   the same tasks as the cursor's.
"""

from __future__ import annotations

import argparse
import warnings
import os
import platform
import random
import shutil
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cleanup  # noqa: E402
from bench.cleanup import Made  # noqa: E402
from pathway import services  # noqa: E402
from pathway.bootstrap import Forlop, bootstrap  # noqa: E402
from pathway.case.commands import AssignCoordinator, CreateHandover, RecordConsent, RecordRisk  # noqa: E402
from pathway.people import PersonRecord, seal  # noqa: E402
from pathway.settings import Settings  # noqa: E402
from pathway.store.tables import case_t, handover_t, person_t, user_t  # noqa: E402
from pathway.views.tasks import PAGE, _filters, _of_agency, _ORDER, task_counts, task_page  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
UNIT, COORDINATOR, AGENCY = "benchenhet", "koordinator", "nav"
STATUSES = (("requested", 50), ("accepted", 30), ("completed", 15), ("declined", 5))
CHUNK = 2000


@dataclass
class Db:
    backend: str
    size: int
    core: Forlop
    cursors: list[str | None] = field(default_factory=list)  # the cursor of every page (None: the first)
    pages: list[list[uuid.UUID]] = field(default_factory=list)  # every page's task ids, as the cursors reach them
    times: dict[str, list[float]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)  # what each operation returned (tasks, rows, or counted)

    @property
    def label(self) -> str:
        return f"{self.backend} {self.size:,}"


def _template(core: Forlop, now: datetime) -> str:
    """One real case through the services, with a NAV and a police task; its reference."""
    services.add_user(engine=core.engine, username=COORDINATOR, role="coordinator", unit=UNIT, phone="+47 55 00 00 00")
    at = now - timedelta(days=2)
    ref = services.open_case(uow=core.uow(), pathway_id="krisesenter", unit=UNIT, first_contact_at=at,
                             actor=COORDINATOR, keys=core.keys, index_key=core.settings.index_key,
                             reference_prefix="BEN", at=at,
                             person=PersonRecord(name="Testperson 1", safe_contact="+47 400 00 001")).reference
    for command in (AssignCoordinator(COORDINATOR), RecordRisk("medium"),
                    RecordConsent("nav", scope=("name", "contact", "finances"), given=True),
                    RecordConsent("police", scope=("name", "contact", "threat_assessment"), given=True),
                    CreateHandover("K7", note="Ring før kl. 15"), CreateHandover("K6")):
        services.execute(uow=core.uow(), reference=ref, expected_version=None, command=command, actor=COORDINATOR,
                         at=at + timedelta(hours=1))
    return ref


def fill(core: Forlop, size: int, now: datetime, seed: int) -> None:
    """The template case and ``size - 1`` copies of its rows, so that NAV has ``size`` tasks; then ANALYZE."""
    ref = _template(core, now)
    rng = random.Random(seed)
    with core.engine.connect() as conn:
        case = dict(conn.execute(sa.select(case_t).where(case_t.c.reference == ref)).mappings().one())
        tasks = [dict(r) for r in conn.execute(sa.select(handover_t).where(handover_t.c.case_id == case["id"]))
                 .mappings()]
    statuses, weights = [s for s, _ in STATUSES], [w for _, w in STATUSES]
    cases: list[dict[str, Any]] = []
    persons: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []

    def flush(conn: sa.Connection) -> None:
        for table, batch in ((case_t, cases), (person_t, persons), (handover_t, rows)):
            if batch:
                conn.execute(table.insert(), batch)
                batch.clear()

    with core.engine.begin() as conn:
        for i in range(2, size + 1):
            case_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            cases.append({**case, "id": case_id, "reference": f"BEN-2026-{i:05d}"})
            key_id, blob, index = seal(PersonRecord(name=f"Testperson {i}", safe_contact=f"+47 400 {i:05d}"),
                                       case_id=case_id, keys=core.keys, index_key=core.settings.index_key,
                                       sealer=None)  # copies without a case key: under the master key
            persons.append({"case_id": case_id, "key_id": key_id, "ciphertext": blob, "name_index": index,
                            "updated_at": now})
            for task in tasks:
                status = rng.choices(statuses, weights)[0]
                due = now + timedelta(days=rng.uniform(-20, 15))
                created = min(due - timedelta(days=2), now - timedelta(hours=1))
                answered = created + (now - created) * rng.random()
                rows.append({**task, "id": uuid.UUID(int=rng.getrandbits(128), version=4), "case_id": case_id,
                             "status": status, "created_at": created, "due_at": due,
                             "updated_at": created if status == "requested" else answered,
                             "updated_by": None if status == "requested" else f"{task['agency']}-kontakt",
                             "reply": {"completed": "utført", "declined": "ikke vår kommune"}.get(status)})
            if len(cases) >= CHUNK:
                flush(conn)
        flush(conn)
    with core.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def _base() -> sa.Select[Any]:
    """``agency_tasks``' select, joins, filter on the agency and ORDER BY, without its paging."""
    return (sa.select(handover_t, case_t.c.reference, case_t.c.unit, case_t.c.coordinator, case_t.c.pathway_id,
                      case_t.c.definition_version, case_t.c.consents, person_t.c.ciphertext,
                      user_t.c.phone.label("coordinator_phone"))
            .join(case_t, case_t.c.id == handover_t.c.case_id)
            .outerjoin(person_t, person_t.c.case_id == handover_t.c.case_id)
            .outerjoin(user_t, sa.and_(user_t.c.username == case_t.c.coordinator, user_t.c.active.is_(True)))
            .where(_of_agency(AGENCY)).order_by(*_ORDER))


def walk(db: Db, now: datetime) -> None:
    """Every page of NAV's list by cursor, once: their cursors and task ids."""
    cursor = None
    with db.core.uow(snapshot=True) as uow:
        while True:
            page = task_page(uow.conn, agency=AGENCY, catalog=db.core.catalog, keys=db.core.keys, now=now,
                             cursor=cursor)
            db.cursors.append(cursor)
            db.pages.append([t.id for t in page.items])
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    seen = [i for p in db.pages for i in p]
    assert len(seen) == len(set(seen)) == db.size, (len(seen), len(set(seen)), db.size)


def operations(db: Db, now: datetime) -> dict[str, Callable[[sa.Connection], int]]:
    """Each timed operation on ``db``: a function of the connection returning how many rows it gave (the SQL
    queries fetch ``PAGE + 1`` as the view does; ``task_counts`` returns the number of tasks it counted)."""
    core, last, middle = db.core, len(db.pages) - 1, (len(db.pages) - 1) // 2

    def page(cursor: str | None) -> Callable[[sa.Connection], int]:
        return lambda conn: len(task_page(conn, agency=AGENCY, catalog=core.catalog, keys=core.keys, now=now,
                                          cursor=cursor).items)

    def by_cursor(index: int) -> Callable[[sa.Connection], int]:
        query = _base().where(*_filters(None, False, now, db.cursors[index])).limit(PAGE + 1)
        return lambda conn: len(conn.execute(query).all())

    def by_offset(index: int) -> Callable[[sa.Connection], int]:
        query = _base().offset(index * PAGE).limit(PAGE + 1)
        return lambda conn: len(conn.execute(query).all())

    return {
        "task_page: first page": page(None),
        f"task_page: middle page ({middle + 1}, cursor)": page(db.cursors[middle]),
        f"task_page: last page ({last + 1}, cursor)": page(db.cursors[last]),
        "task_counts": lambda conn: sum(n for k, n in task_counts(conn, agency=AGENCY, now=now).items()
                                        if k != "overdue"),
        "SQL: middle page, cursor": by_cursor(middle),
        "SQL: middle page, OFFSET": by_offset(middle),
        "SQL: last page, cursor": by_cursor(last),
        "SQL: last page, OFFSET": by_offset(last),
    }


def check_offset(db: Db) -> None:
    """The OFFSET query gives each page the tasks the cursors gave it."""
    with db.core.uow(snapshot=True) as uow:
        for index in {0, (len(db.pages) - 1) // 2, len(db.pages) - 1}:
            ids = [r.id for r in uow.conn.execute(_base().offset(index * PAGE).limit(PAGE))]
            assert ids == db.pages[index], f"{db.label}: page {index + 1} by OFFSET differs from the cursor's"


def plan(db: Db) -> list[str]:
    """The plan of the first page's SQL as the driver is sent it (``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN`` on
    PostgreSQL)."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        sent.append((statement, parameters))

    with db.core.engine.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", record)
        conn.execute(_base().limit(PAGE + 1)).all()
        sa.event.remove(conn, "before_cursor_execute", record)
        statement, parameters = sent[-1]
        explain = "EXPLAIN QUERY PLAN " if db.backend == "sqlite" else "EXPLAIN "
        return [str(r[-1]) for r in conn.exec_driver_sql(explain + statement, parameters)]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def main(made: Made) -> None:
    warnings.filterwarnings("ignore", message="Skipped unsupported reflection")  # the migrations' expression index
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="500 and 2,000 tasks, fewer runs")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="NAV tasks per database (1000 10000)")
    parser.add_argument("--reps", type=int, default=None, help="timed runs per operation (30; --quick 15)")
    parser.add_argument("--backends", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=None, help=f"a server that lets us CREATE DATABASE (default {DEFAULT_PG}"
                        " or FORLOP_TEST_POSTGRES_URL)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    sizes = args.sizes or ([500, 2000] if args.quick else [1000, 10000])
    reps = args.reps or (15 if args.quick else 30)
    admin_url = args.pg_url or os.environ.get("FORLOP_TEST_POSTGRES_URL", DEFAULT_PG)
    print(f"Task list benchmark, {time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
          f"SQLAlchemy {sa.__version__}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; argv: {' '.join(sys.argv[1:]) or '(defaults)'}")
    started = time.perf_counter()
    workdir = made.temp_dir("forlop_tasks_")
    definitions = workdir / "definitions"
    shutil.copytree(ROOT / "definitions", definitions)  # one definition for the whole run
    now = datetime.now(timezone.utc).replace(microsecond=0)
    dbs: list[Db] = []
    try:
        for backend in args.backends:
            for size in sizes:
                if backend == "sqlite":
                    url = f"sqlite:///{workdir}/tasks_{size}.db"
                else:
                    url = made.database(admin_url, f"forlop_bench_{os.getpid()}_tasks_{size}")
                core = bootstrap(Settings(env="test", database_url=url, definitions_dir=definitions, scheduler="off"))
                db = Db(backend, size, core)
                dbs.append(db)
                t0 = time.perf_counter()
                fill(core, size, now, args.seed + size)
                walk(db, now)
                check_offset(db)
                print(f"  {db.label}: {size:,} NAV tasks (and {size:,} police tasks) on {size:,} cases, "
                      f"{len(db.pages)} pages of {PAGE}; made in {time.perf_counter() - t0:.1f} s", flush=True)
        ops = {id(db): operations(db, now) for db in dbs}
        for rep in range(-2, reps):  # two warm-up rounds, then the timed ones; the databases take turns
            for db in dbs if rep % 2 == 0 else reversed(dbs):
                for name, op in ops[id(db)].items():
                    with db.core.uow(snapshot=True) as uow:
                        t0 = time.perf_counter()
                        returned = op(uow.conn)
                        took = time.perf_counter() - t0
                    if rep >= 0:
                        db.times.setdefault(name.split(" (")[0], []).append(took)
                        db.rows[name.split(" (")[0]] = returned
        print(f"\nTimings: p50 and p95 of {reps} runs, ms; each run one call in a unit of work (snapshot=True), "
              f"the databases taking turns.")
        small, large = sizes[0], sizes[-1]
        for backend in args.backends:
            by_size = {db.size: db for db in dbs if db.backend == backend}
            names = list(by_size[small].times)
            rows = []
            for name in names:
                cells = [name, " / ".join(str(by_size[s].rows[name]) for s in sizes)]
                for size in sizes:
                    t = by_size[size].times[name]
                    cells += [f"{statistics.median(t) * 1000:.2f}", f"{pct(t, 95) * 1000:.2f}"]
                ratio = statistics.median(by_size[large].times[name]) / statistics.median(by_size[small].times[name])
                rows.append([*cells, f"{ratio:.2f}x"])
            headers = ["operation", "returns", *(h for s in sizes for h in (f"{s:,} p50", f"{s:,} p95")),
                       f"{large:,}/{small:,}"]
            print(f"\n{backend} (pages of {PAGE}; the last page is page "
                  + ", ".join(f"{len(by_size[s].pages)} at {s:,}" for s in sizes) + ")")
            print(table(headers, rows))
            for size in sizes:
                p50 = {k: statistics.median(v) for k, v in by_size[size].times.items()}

                def ratio_of(a: str, b: str, p50: dict[str, float] = p50) -> str:
                    return f"{p50[a] / p50[b]:.2f}x"

                print(f"  {size:,}: last page by cursor / first page "
                      f"{ratio_of('task_page: last page', 'task_page: first page')};"
                      f" last page by OFFSET / by cursor (SQL) "
                      f"{ratio_of('SQL: last page, OFFSET', 'SQL: last page, cursor')};"
                      f" middle page by OFFSET / by cursor (SQL) "
                      f"{ratio_of('SQL: middle page, OFFSET', 'SQL: middle page, cursor')};"
                      f" last page OFFSET (SQL) / task_page by cursor "
                      f"{ratio_of('SQL: last page, OFFSET', 'task_page: last page')}")
            print(f"  plan of the first page's SQL at {large:,}:")
            for step in plan(by_size[large]):
                print(f"    {step}")
    finally:
        for db in dbs:
            db.core.close()
    print(f"\nTotal {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    cleanup.run(main)
