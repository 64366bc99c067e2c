#!/usr/bin/env python
"""What one key per case costs: the same walk of a case with its texts sealed under its own key, and without (a case
as opened before case keys: texts as written, the person under the master key), side by side in one run.

Each side opens ``--cases`` cases with a person record and walks each through operations that carry free text
(pause with a reason, resume, an added step with a title and a reason, K1 completed, close early with a reason),
one transaction per operation through the services, then loads each case once more as a page would (case row, steps,
tasks, events opened, person decrypted). The two sides alternate in chunks of ``--chunk`` cases on the same database,
so load on the machine hits both alike. It prints CPU and wall time per operation and the ratio sealed/plain; it
never asserts on time.

    .venv/bin/python bench/casekeys.py [--cases 300] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cleanup  # noqa: E402
from bench.cleanup import Made  # noqa: E402
from pathway import services  # noqa: E402
from pathway.bootstrap import Forlop, bootstrap  # noqa: E402
from pathway.case import commands as do  # noqa: E402
from pathway.people import PersonRecord  # noqa: E402
from pathway.services.people import person_of  # noqa: E402
from pathway.settings import Settings  # noqa: E402
from pathway.store.uow import UnitOfWork  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 11, 23, 8, tzinfo=timezone.utc)  # a Monday: a fixed clock, so every run walks the same days
PERSON = PersonRecord(name="Testperson Benk", safe_contact="+47 400 00 000", address="Fiktiv gate 1")


def _uow(core: Forlop, sealed: bool) -> UnitOfWork:
    # Without the key ring the repository opens cases as before case keys (``PLAIN``): the other side of the ratio.
    return UnitOfWork(core.engine, core.catalog, keys=core.keys if sealed else None)


def walk(core: Forlop, sealed: bool, n: int, start: int) -> tuple[int, float, float]:
    """Open and walk ``n`` cases; (operations, CPU seconds, wall seconds)."""
    ops = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(start, start + n):
        at = T0 + timedelta(minutes=i)
        ref = services.open_case(uow=_uow(core, sealed), pathway_id="krisesenter", unit=core.settings.units[0],
                                 first_contact_at=at, actor="koordinator", keys=core.keys,
                                 index_key=core.settings.index_key, reference_prefix="BEN", person=PERSON,
                                 at=at).reference
        steps = [do.Pause(reason="personen er på sykehus"), do.Resume(reason="tilbake"),
                 do.AddStep(title="Følge til legevakt", owner="crisis_centre", due_at=at + timedelta(days=3),
                            reason="avtalt med personen"),
                 do.CompleteStep("K1"), do.Close("declined", reason="takket nei til videre oppfølging")]
        for k, command in enumerate(steps, start=1):
            services.execute(uow=_uow(core, sealed), reference=ref, expected_version=None, actor="koordinator",
                             command=command, at=at + timedelta(hours=k))
        with _uow(core, sealed) as uow:  # read as the case page does
            case = uow.cases.get(ref)
            uow.cases.events(case)
            person_of(uow.conn, ref, core.keys)
        ops += 1 + len(steps) + 1
    return ops, time.process_time() - cpu0, time.perf_counter() - wall0


def run_backend(made: Made, backend: str, args: argparse.Namespace) -> tuple[float, float]:
    if backend == "sqlite":
        url = f"sqlite:///{made.temp_dir('casekeys-') / 'bench.db'}"
    else:
        url = made.database(args.pg_url, f"forlop_bench_casekeys_{os.getpid()}")
    core = bootstrap(Settings(env="test", database_url=url, scheduler="off"))
    try:
        walk(core, True, 5, 10_000_000)  # warm-up, both sides
        walk(core, False, 5, 10_000_100)
        totals = {True: [0, 0.0, 0.0], False: [0, 0.0, 0.0]}
        done = 0
        while done < args.cases:
            n = min(args.chunk, args.cases - done)
            for sealed in (True, False) if (done // args.chunk) % 2 == 0 else (False, True):
                ops, cpu, wall = walk(core, sealed, n, done * 2 + (0 if sealed else n))
                totals[sealed][0] += ops
                totals[sealed][1] += cpu
                totals[sealed][2] += wall
            done += n
    finally:
        core.close()
    print(f"\n== {backend}: {args.cases} cases a side, {totals[True][0] // args.cases} operations each ==")
    print(f"  {'side':<34} {'ops':>6} {'CPU µs/op':>10} {'wall µs/op':>11}")
    per = {}
    for sealed, label in ((True, "sealed under the case's key"), (False, "plain (before case keys)")):
        ops, cpu, wall = totals[sealed]
        per[sealed] = (cpu / ops * 1e6, wall / ops * 1e6)
        print(f"  {label:<34} {ops:>6} {per[sealed][0]:>10,.0f} {per[sealed][1]:>11,.0f}")
    cpu_ratio, wall_ratio = per[True][0] / per[False][0], per[True][1] / per[False][1]
    print(f"  sealed/plain: CPU {cpu_ratio:.2f}x, wall {wall_ratio:.2f}x ; load {os.getloadavg()[0]:.2f}")
    return cpu_ratio, wall_ratio


def main(made: Made) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=300, help="cases walked on each side")
    parser.add_argument("--chunk", type=int, default=25, help="cases per alternation between the two sides")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=os.environ.get("FORLOP_TEST_POSTGRES_URL", DEFAULT_PG))
    args = parser.parse_args()
    for backend in args.backends.split(","):
        run_backend(made, backend.strip(), args)
    return 0


if __name__ == "__main__":
    cleanup.run(main)
