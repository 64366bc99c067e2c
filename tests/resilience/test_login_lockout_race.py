"""Parallel password guesses against the real server (two worker processes) are all counted: 60 wrong passwords
in 3 bursts of 20 lock the account, and the right password is then refused. On SQLite and on PostgreSQL (where a
count read and written back by each request let 60 guesses leave a count of 3 and the right password in)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import httpx
import sqlalchemy as sa

from pathway.bootstrap import Forlop
from pathway.store.tables import user_t

from .support import API, CLIENT_TIMEOUT, api_server, say, seed_world

BURSTS, PARALLEL = 3, 20


def test_parallel_wrong_passwords_are_all_counted_and_lock_the_account(core: Forlop, tmp_path: Path) -> None:
    seed_world(core, cases=0)  # the demo users, password "demo"
    with api_server(core.settings.database_url, workers=2, log_dir=tmp_path) as server:
        statuses: Counter[int] = Counter()
        lock = threading.Lock()

        def guess(barrier: threading.Barrier, n: int) -> None:
            with httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT) as client:
                barrier.wait(timeout=60)  # every guess of a burst leaves at the same moment
                r = client.post(f"{API}/auth/token", data={"username": "koordinator", "password": f"feil-{n}"})
            with lock:
                statuses[r.status_code] += 1

        for burst in range(BURSTS):
            barrier = threading.Barrier(PARALLEL)
            threads = [threading.Thread(target=guess, args=(barrier, burst * PARALLEL + i)) for i in range(PARALLEL)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=300)
            assert not any(t.is_alive() for t in threads)
        right = httpx.post(server.url + f"{API}/auth/token", data={"username": "koordinator", "password": "demo"},
                           timeout=CLIENT_TIMEOUT)

    with core.engine.connect() as conn:
        failed, locked_until = conn.execute(sa.select(user_t.c.failed_logins, user_t.c.locked_until)
                                            .where(user_t.c.username == "koordinator")).one()
    say(f"{core.engine.dialect.name}: {BURSTS} bursts of {PARALLEL} wrong passwords: answers {dict(statuses)}; "
        f"failed_logins {failed}; the right password then: {right.status_code}")
    assert statuses == Counter({401: BURSTS * PARALLEL})
    assert right.status_code == 401
    assert failed == BURSTS * PARALLEL + 1  # the right password during the lock counts as a failed login too
    assert locked_until is not None
