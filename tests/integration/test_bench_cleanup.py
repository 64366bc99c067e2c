"""A benchmark stopped with SIGTERM or Ctrl-C leaves nothing behind (bench/cleanup.py, used by every benchmark):
its temporary folder is removed, the process it started is gone with its whole group, its PostgreSQL database is
dropped, and it exits 128 + the signal's number without a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.support import ROOT
from tests.suite import processes

# Asserts nothing that depends on the date: not run again at the Makefile's TEST_DATES.
pytestmark = pytest.mark.any_date

# A benchmark in miniature: it makes a folder, a child process (which starts a grandchild) and, given a server, a
# database; says what it made; and waits to be stopped.
BENCHMARK = textwrap.dedent("""
    import subprocess, sys, time
    from bench import cleanup

    def main(made):
        folder = made.temp_dir("forlop-cleanup-test-", sys.argv[1])
        sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
        starter = f"import subprocess, time; subprocess.Popen({sleeper!r}); time.sleep(600)"
        child = made.spawn([sys.executable, "-c", starter],  # with a child of its own: a group of two
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if sys.argv[2]:
            made.database(sys.argv[2], sys.argv[3])
        print(folder, child.pid, flush=True)
        time.sleep(600)

    cleanup.run(main)
""")


def _databases(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.text("SELECT datname FROM pg_database")).scalars())
    finally:
        engine.dispose()


def _drop(url: str, name: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


@pytest.mark.parametrize(("signum", "to_group"), [(signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["SIGTERM", "Ctrl-C"])
def test_a_stopped_benchmark_removes_what_it_made(tmp_path: Path, postgres_url: str | None, signum: int,
                                                  to_group: bool) -> None:
    name = f"forlop_bench_cleanup_{uuid.uuid4().hex[:8]}"
    proc = processes.spawn([sys.executable, "-c", BENCHMARK, str(tmp_path), postgres_url or "", name], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child = ""
    try:
        folder, child = proc.stdout.readline().split()  # type: ignore[union-attr]
        assert Path(folder).is_dir() and processes.group(int(child))
        if postgres_url:
            assert name in _databases(postgres_url)
        if to_group:  # as a terminal's Ctrl-C: the benchmark's group, not the child's (a session of its own)
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        processes.end(proc)
        if child:  # in a session of its own: ending the benchmark's group does not reach it
            for pid in processes.group(int(child)):
                os.kill(pid, signal.SIGKILL)
        if postgres_url and name in _databases(postgres_url):  # only if the benchmark failed to: the test fails below
            _drop(postgres_url, name)
    assert proc.returncode == 128 + signum, err
    assert f"stopped by {signal.Signals(signum).name}" in err and "Traceback" not in err, err
    assert not Path(folder).exists()
    assert processes.group(int(child)) == []
    if postgres_url:
        assert name not in _databases(postgres_url)
