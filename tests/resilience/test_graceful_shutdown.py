"""SIGTERM to ``forlop serve --workers 2`` while a write is in flight: the write finishes and is answered, then
the server exits 0. The write is held in flight by the test, which holds the case's lock (PostgreSQL: the row,
SQLite: the write lock) and lets go only after the signal. On SQLite and on PostgreSQL.

And with one worker or two, SIGTERM (as ``kill`` and ``docker stop`` send it) and Ctrl-C (SIGINT to the whole
process group, as a terminal sends it) end the server with exit code 0, leaving no process behind.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from pathway.bootstrap import Forlop
from pathway.store.tables import case_t

from .support import API, CLIENT_TIMEOUT, Server, api_server, say, seed_world, wait_until


@contextmanager
def case_locked(core: Forlop, ref: str) -> Iterator[None]:
    """Hold what a write of the case needs, until the block ends."""
    if core.engine.dialect.name == "postgresql":
        with core.engine.connect() as conn:
            conn.execute(sa.select(case_t.c.id).where(case_t.c.reference == ref).with_for_update())
            yield
            conn.rollback()
        return
    conn = sqlite3.connect(core.engine.url.database, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def _connections_accepted(server: Server) -> int:
    """Connections to the server's port that a worker has accepted (their socket is among its open files)."""
    port = int(server.url.rsplit(":", 1)[1])
    with open("/proc/net/tcp") as f:
        inodes = {fields[9] for fields in (line.split() for line in f.readlines()[1:])
                  if int(fields[1].split(":")[1], 16) == port and fields[3] == "01"}
    held = 0
    for pid in server.workers():
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        held += sum(link.startswith("socket:[") and link[8:-1] in inodes for link in links)
    return held


def _waiting_on_a_lock(core: Forlop) -> bool:
    if core.engine.dialect.name != "postgresql":
        return True  # SQLite has no view of its waiters: the accepted connection is the sign (see below)
    with core.engine.connect() as conn:
        return bool(conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                         "AND wait_event_type = 'Lock'")).scalar_one())


def test_sigterm_finishes_the_write_in_flight_then_the_server_exits_cleanly(core: Forlop, tmp_path: Path) -> None:
    db = core.engine.dialect.name
    ref = seed_world(core, cases=1)[0]
    with api_server(core.settings.database_url, workers=2, log_dir=tmp_path,
                    FORLOP_SHUTDOWN_GRACE_SECONDS="120") as server:
        token = server.sign_in("koordinator")
        answer: dict[str, Any] = {}

        def write() -> None:
            with httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT) as client:
                r = client.post(f"{API}/cases/{ref}/pause", json={"reason": "syntetisk"},
                                headers={"Authorization": f"Bearer {token}", "If-Match": '"1"'})
                answer.update(status=r.status_code, body=r.json(), at=time.monotonic())

        with case_locked(core, ref):
            thread = threading.Thread(target=write)
            thread.start()
            assert wait_until(lambda: _connections_accepted(server) > 0 and _waiting_on_a_lock(core), timeout=60)
            time.sleep(0.5)  # SQLite: let the worker read the request it accepted (PostgreSQL: already waiting)
            signalled = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)  # the server is shutting down with the write still waiting for the lock
            still_waiting = thread.is_alive()
        released = time.monotonic()
        thread.join(timeout=120)
        code = server.proc.wait(timeout=120)
        exited = time.monotonic()
        log = server.log_text()

    with core.engine.connect() as conn:
        version = conn.execute(sa.select(case_t.c.version).where(case_t.c.reference == ref)).scalar_one()
    say(f"[{db}] SIGTERM with a write in flight: answered {answer.get('status')} "
        f"{answer['at'] - released:.2f} s after the lock was released ({released - signalled:.1f} s after the "
        f"signal); server exit code {code}, {exited - released:.2f} s after the release; case version {version}")
    assert still_waiting
    assert answer["status"] == 200 and answer["body"]["version"] == 2 and version == 2
    assert code == 0
    assert "Cancel" not in log and "Traceback" not in log, log[-3000:]


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is left (a zombie counts: nobody has waited for it)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(("signum", "to_group"), [(signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["SIGTERM", "Ctrl-C"])
def test_a_stop_signal_ends_the_server_with_exit_code_0_and_nothing_left(
        tmp_path: Path, workers: int, signum: signal.Signals, to_group: bool) -> None:
    # serve migrates the fresh database itself; api_server starts it in a session of its own (so its pid is the
    # group's id) and kills that whole group when the block ends, whatever happened in it
    with api_server(f"sqlite:///{tmp_path / 'forlop.db'}", workers=workers, log_dir=tmp_path) as server:
        pgid = server.proc.pid
        if to_group:
            os.killpg(pgid, signum)
        else:
            server.proc.send_signal(signum)
        code = server.proc.wait(timeout=120)
        left = _group_alive(pgid)
        log = server.log_text()
    assert code == 0, log[-3000:]
    assert not left
    assert "Traceback" not in log, log[-3000:]
