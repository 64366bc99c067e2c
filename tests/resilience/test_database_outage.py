"""PostgreSQL stopped under load and started again.

The shared test server is never touched: the test runs its own cluster (initdb + pg_ctl on a free port in a
temporary directory) and stops that one with ``pg_ctl stop -m immediate`` (as a crash would: no checkpoint, crash
recovery at start). The server (``forlop serve --workers 2``) and a ``forlop scheduler`` keep running throughout.

During the outage every request gets 503 problem+json at once (not 500, not a hang: a hang would show as the
clients' timeout); after it the same processes answer again without a restart; the clients retry their changes
with the same Idempotency-Key and version, and nothing is written twice.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pathway.bootstrap import Forlop, bootstrap
from pathway.settings import Settings
from tests.suite import processes

from .support import (
    PG_BIN,
    PROBLEM,
    ROOT,
    CompletionStream,
    PrivateCluster,
    api_server,
    audit_verify,
    forlop_argv,
    forlop_env,
    ledger,
    say,
    seed_world,
    statuses,
    stop_process,
    wait_until,
)

CASES = 60
CLIENTS = 4
OUTAGE = 4.0  # seconds the database is down
THINK = 0.02


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    if not (PG_BIN / "initdb").exists():
        message = f"no PostgreSQL server binaries in {PG_BIN} (set FORLOP_TEST_PG_BIN)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pg = PrivateCluster()
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.remove()


@pytest.fixture
def private_core(cluster: PrivateCluster) -> Iterator[Forlop]:
    url = cluster.create_database("forlop")
    core = bootstrap(Settings(env="test", database_url=url, definitions_dir=ROOT / "definitions"))
    yield core
    core.close()


def test_postgresql_stopped_under_load_gives_503_at_once_and_the_app_recovers_without_a_restart(
        cluster: PrivateCluster, private_core: Forlop, tmp_path: Path) -> None:
    core = private_core
    url = core.settings.database_url
    refs = seed_world(core, cases=CASES)
    scheduler_log = tmp_path / "scheduler.log"
    with open(scheduler_log, "wb") as out:
        scheduler = processes.spawn(forlop_argv("scheduler"), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                    env=forlop_env(url, FORLOP_SCAN_INTERVAL_SECONDS="1",
                                                   FORLOP_DISPATCH_INTERVAL_SECONDS="1"))
    try:
        with api_server(url, workers=2, log_dir=tmp_path) as server:
            workers = server.workers()
            stream = CompletionStream(server.url, server.sign_in("koordinator"), refs, threads=CLIENTS, retry=True,
                                      retry_delay=0.25, think=THINK).start()
            try:
                assert wait_until(lambda: stream.acknowledged() >= 40 or stream.finished(), timeout=180)
                assert not stream.finished()
                down = time.monotonic()
                cluster.stop("immediate")
                stopped = time.monotonic()
                time.sleep(OUTAGE)
                starting = time.monotonic()
                cluster.start()
                up = time.monotonic()
                acknowledged_at_restart = stream.acknowledged()
                assert wait_until(lambda: stream.acknowledged() > acknowledged_at_restart or stream.finished(),
                                  timeout=120)
                assert wait_until(stream.finished, timeout=600)
            finally:
                stream.stop()
            intents, attempts = stream.snapshot()
            same_workers = server.workers() == workers
            log = server.log_text()
        assert scheduler.poll() is None, "the scheduler process died in the outage"
    finally:
        stop_process(scheduler)  # type: ignore[arg-type]

    # Sent once pg_ctl had stopped the database, answered before it began to start it again.
    during = [a for a in attempts if stopped <= a.at and (a.status is None or a.at + a.took < starting)]
    answered = [a for a in during if a.status is not None]
    first_ok = min((a.at + a.took for a in attempts if a.status is not None and a.status < 300 and a.at >= starting),
                   default=float("nan"))
    found = ledger(core, intents)
    acknowledged = [i for i in intents if i.acknowledged]
    retried = [i for i in intents if len(i.attempts) > 1]
    lost_answer = [i for i in intents if not i.acknowledged]
    code, summary = audit_verify(url)
    say(f"[postgresql, private cluster] outage {starting - stopped:.1f} s (pg_ctl stop -m immediate took "
        f"{stopped - down:.2f} s, start {up - starting:.2f} s); requests sent during it {len(during)}: "
        f"{statuses(during)}; slowest answer during it {max((a.took for a in during), default=0):.3f} s; "
        f"first 2xx {first_ok - up:.2f} s after the database was up; workers restarted: "
        f"{'none' if same_workers else 'yes'}; all requests {statuses(attempts)}")
    say(f"[postgresql, private cluster] acknowledged {len(acknowledged)}, found "
        f"{len(acknowledged) - len(found.missing)}, half-applied {len(found.half_applied)}, completed twice "
        f"{len(found.completed_twice)}; changes retried {len(retried)}, of which applied by an attempt whose answer "
        f"was lost {sum(bool(i.applied) for i in lost_answer)} (its retry answered 409); audit verify: "
        f"{summary.splitlines()[0]}")

    # Requests during the outage were answered at once, each 503 problem+json saying the database is away.
    assert answered and len(answered) == len(during)  # none timed out or was cut off
    assert {a.status for a in during} == {503}
    assert {a.content_type for a in during} == {PROBLEM}
    assert {a.problem for a in during} == {"/problems/database-unavailable"}
    assert not [a for a in attempts if a.status is not None and a.status >= 500 and a.status != 503]
    # 503 only from the outage until the first success after it; then the same processes answer again.
    stray = [(a.what, round(a.at - up, 3), round(a.took, 3)) for a in attempts
             if a.status == 503 and not (down <= a.at + a.took and a.at <= first_ok)]
    assert not stray, f"503 outside the outage (sent, s after up; took): {stray}; first 2xx {first_ok - up:.3f}"
    assert same_workers and math.isfinite(first_ok)
    # Nothing lost, nothing half-written, nothing twice; a lost answer's retry was refused as stale, not applied.
    assert found.missing == [] and found.half_applied == [] and found.completed_twice == []
    assert stream.surprises == []
    assert all(i.applied for i in lost_answer), [(i.ref, i.code, [a.status for a in i.attempts]) for i in lost_answer]
    assert all(i.attempts[-1].problem == "/problems/stale-version" for i in lost_answer)
    assert len(acknowledged) + len(lost_answer) == found.events - found.cases
    assert code == 0, summary
    assert "Traceback" not in log, log[-3000:]
    assert "Traceback" not in scheduler_log.read_text(), scheduler_log.read_text()[-3000:]
