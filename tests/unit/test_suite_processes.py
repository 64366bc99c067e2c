"""The suite leaves nothing running: a process it starts is ended with its whole group, and a run in which one
outlives its test fails and ends it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.suite import processes
from tests.suite.processes import RUN

# Asserts nothing that depends on the date: not run again at the Makefile's TEST_DATES.
pytestmark = pytest.mark.any_date

ROOT = Path(__file__).resolve().parents[2]


def test_ending_a_process_ends_the_children_it_left_behind() -> None:
    # The shell starts a child and is killed first, as uvicorn's supervisor was: the child is re-parented.
    proc = processes.spawn(["sh", "-c", "sleep 300 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    try:
        os.kill(proc.pid, 9)
        proc.wait(timeout=30)
        assert processes.alive(child)
    finally:
        processes.end(proc)
    assert not processes.alive(child, within=10)


def test_a_run_whose_test_leaves_a_process_behind_fails_and_ends_it(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_configure, pytest_sessionfinish  # noqa\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "pidfile").write_text("")
    (tmp_path / "test_leak.py").write_text(textwrap.dedent(f"""
        import subprocess

        def test_forgets_its_server():
            proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
            open({str(tmp_path / "pidfile")!r}, "w").write(str(proc.pid))
            assert False, "a failing test never reaches its clean-up"
    """))
    env = {k: v for k, v in os.environ.items() if k != RUN}  # a run of its own, with its own token
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(tmp_path)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300, start_new_session=True)
    leaked = int((tmp_path / "pidfile").read_text())
    try:
        assert done.returncode == 1, done.stdout[-3000:]
        assert "1 process(es) started by the suite were still running at its end" in done.stdout, done.stdout[-3000:]
        assert "sleep 300" in done.stdout
        assert not processes.alive(leaked, within=10)
    finally:
        if processes.alive(leaked):
            os.kill(leaked, 9)
