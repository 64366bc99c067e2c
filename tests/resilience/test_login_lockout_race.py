"""Parallel password guesses against the real server (two worker processes) are all counted, on SQLite and on
PostgreSQL. With the rate limits set out of the way, 60 wrong passwords in 3 bursts of 20 lock the account, and
the right password is then refused (a count read and written back by each request let 60 guesses leave a count of
3 and the right password in). With the limits on, the workers share one count: exactly the allowed number of
guesses reach the account, every other one is answered 429, whichever worker took it."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import httpx
import sqlalchemy as sa

from pathway.bootstrap import Forlop
from pathway.store.tables import rate_limit_t, user_t

from .support import API, CLIENT_TIMEOUT, Server, api_server, say, seed_world

BURSTS, PARALLEL = 3, 20
NO_LIMITS = {"FORLOP_LOGIN_ATTEMPTS_PER_CLIENT": "100000", "FORLOP_LOGIN_ATTEMPTS_PER_NAME": "100000"}


def _guess_in_bursts(server: Server, username: str) -> Counter[int]:
    """``BURSTS`` bursts of ``PARALLEL`` wrong passwords, each burst leaving at the same moment; the answers."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def guess(barrier: threading.Barrier, n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT) as client:
            barrier.wait(timeout=60)
            r = client.post(f"{API}/auth/token", data={"username": username, "password": f"feil-{n}"})
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
    return statuses


def _account(core: Forlop, username: str) -> tuple[int, object]:
    with core.engine.connect() as conn:
        failed, locked_until = conn.execute(sa.select(user_t.c.failed_logins, user_t.c.locked_until)
                                            .where(user_t.c.username == username)).one()
    return failed, locked_until


def test_parallel_wrong_passwords_are_all_counted_and_lock_the_account(core: Forlop, tmp_path: Path) -> None:
    seed_world(core, cases=0)  # the demo users, password "demo"
    with api_server(core.settings.database_url, workers=2, log_dir=tmp_path, **NO_LIMITS) as server:
        statuses = _guess_in_bursts(server, "koordinator")
        right = httpx.post(server.url + f"{API}/auth/token", data={"username": "koordinator", "password": "demo"},
                           timeout=CLIENT_TIMEOUT)
    failed, locked_until = _account(core, "koordinator")
    say(f"{core.engine.dialect.name}: {BURSTS} bursts of {PARALLEL} wrong passwords: answers {dict(statuses)}; "
        f"failed_logins {failed}; the right password then: {right.status_code}")
    assert statuses == Counter({401: BURSTS * PARALLEL})
    assert right.status_code == 401
    assert failed == BURSTS * PARALLEL + 1  # the right password during the lock counts as a failed login too
    assert locked_until is not None


def test_parallel_guesses_share_one_rate_limit_across_workers(core: Forlop, tmp_path: Path) -> None:
    seed_world(core, cases=0)
    limit = 10
    with api_server(core.settings.database_url, workers=2, log_dir=tmp_path,
                    FORLOP_LOGIN_ATTEMPTS_PER_NAME=str(limit), FORLOP_LOGIN_ATTEMPTS_PER_CLIENT="100000") as server:
        statuses = _guess_in_bursts(server, "koordinator")
        right = httpx.post(server.url + f"{API}/auth/token", data={"username": "koordinator", "password": "demo"},
                           timeout=CLIENT_TIMEOUT)
    failed, _ = _account(core, "koordinator")
    with core.engine.connect() as conn:
        counted = conn.execute(sa.select(sa.func.max(rate_limit_t.c.count))
                               .where(rate_limit_t.c.key.like("login:name:%"))).scalar()
    say(f"{core.engine.dialect.name}: {BURSTS} bursts of {PARALLEL} wrong passwords, a limit of {limit} per name: "
        f"answers {dict(statuses)}; attempts counted {counted}; failed_logins {failed}; the right password then: "
        f"{right.status_code} (Retry-After {right.headers.get('retry-after')})")
    assert statuses == Counter({401: limit, 429: BURSTS * PARALLEL - limit})
    assert counted == BURSTS * PARALLEL + 1  # every attempt, the refused ones too
    assert failed == limit  # a refused attempt never reached the account
    assert right.status_code == 429 and int(right.headers["retry-after"]) >= 1
    assert right.headers["content-type"] == "application/problem+json"
