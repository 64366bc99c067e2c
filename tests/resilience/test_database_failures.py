"""The database's states that are no bug of ours are answered as such, never as a 500: no free connection in the
pool (503, on SQLite and PostgreSQL), a read-only PostgreSQL (a standby after a failover: 503), and a statement
that waits past the API's statement timeout, e.g. on a lock (503, at once rather than a hang).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio.to_thread
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from pathway.accounts import login
from pathway.bootstrap import Forlop, bootstrap
from pathway.demo import DEMO_PASSWORD
from pathway.store.migrate import upgrade
from pathway.store.tables import case_t

from .support import API, PROBLEM, say, seed_world


@contextmanager
def api(core: Forlop, *, serving: bool = False, **settings: Any) -> Iterator[tuple[Forlop, TestClient]]:
    """The app over its own core (same database, other settings), signed in as the demo coordinator."""
    token, _, _ = login(core.engine, "koordinator", DEMO_PASSWORD)  # signing in writes: before anything breaks
    other = bootstrap(core.settings.model_copy(update={"scheduler": "off", **settings}), migrate=False,
                      register_definitions=False, serving=serving)
    try:
        with TestClient(create_app(other), headers={"Authorization": f"Bearer {token}"}) as client:
            yield other, client
    finally:
        other.close()


def assert_problem(r: Any, status: int, kind: str) -> None:
    assert r.status_code == status and r.headers["content-type"] == PROBLEM, r.text
    assert r.json()["type"] == kind
    assert r.headers.get("retry-after") == "5"


def test_a_request_that_finds_no_free_connection_in_the_pool_gets_503_not_500(core: Forlop) -> None:
    seed_world(core, cases=1)
    with api(core, db_pool_size=1, db_max_overflow=0, db_pool_timeout_seconds=0.2) as (small, client):
        held = small.engine.connect()  # the pool's only connection, busy elsewhere
        try:
            busy = client.get(API + "/cases")
        finally:
            held.close()
        free = client.get(API + "/cases")
    say(f"[{core.engine.dialect.name}] pool of one, held: {busy.status_code} {busy.json()['type']}; "
        f"released: {free.status_code}")
    assert_problem(busy, 503, "/problems/database-timeout")
    assert free.status_code == 200


def test_no_request_holds_two_connections_at_once(core: Forlop) -> None:
    """Each request works on one connection at a time: with a pool of one, every read of the API and the pages that a
    coordinator's day touches is answered (a second connection taken while the first is held would wait for the pool
    that the request itself holds, and answer 503 whatever the load)."""
    seed_world(core, cases=1)
    with api(core) as (_, client):
        opened = client.post(f"{API}/cases", json={"person": {"name": "Kari Testesen 0001", "safe_contact": "+47 000"}})
        assert opened.status_code == 201, opened.text
        ref = opened.json()["reference"]
    # a new app: nothing read yet (its catalog has parsed no definition), as after a restart
    with api(core, db_pool_size=1, db_max_overflow=0, db_pool_timeout_seconds=1) as (small, client):
        api_paths = [f"{API}/cases", f"{API}/cases?sort=phase", f"{API}/cases?mine=true", f"{API}/cases/{ref}",
                     f"{API}/cases/{ref}/person", f"{API}/inbox", f"{API}/inbox/cases", f"{API}/me"]
        answers = {path: client.get(path).status_code for path in api_paths}
        with TestClient(create_app(small)) as browser:
            nonce = re.search(r'name="nonce" value="([^"]+)"', browser.get("/login").text)
            assert nonce is not None
            signed = browser.post("/login", data={"username": "koordinator", "password": DEMO_PASSWORD,
                                                  "nonce": nonce.group(1)}, follow_redirects=False)
            assert signed.status_code == 303, signed.text
            for path in ("/cases", "/cases?sort=phase&deadline=week", f"/cases/{ref}", "/cases/new", "/inbox",
                         "/calendar"):
                answers[path] = browser.get(path).status_code
    say(f"[{core.engine.dialect.name}] pool of one: {answers}")
    assert {path: status for path, status in answers.items() if status != 200} == {}


def test_a_worker_runs_no_more_requests_at_once_than_its_pool_keeps_connections(core: Forlop) -> None:
    """The pool's sizing rule (README, "Connections"): requests beyond the pool's size wait their turn in the event
    loop, not for a connection, so a burst never opens (and then closes) connections beyond the pool's: with a pool
    of one and room for five more, twelve concurrent reads are all answered on the one connection."""
    seed_world(core, cases=2)
    with api(core, db_pool_size=1, db_max_overflow=5) as (small, client):
        assert client.portal is not None
        tokens = client.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens)
        assert client.get(API + "/cases").status_code == 200  # the pool's one connection, opened
        opened: list[object] = []
        sa.event.listen(small.engine, "connect", lambda *_: opened.append(1))
        answers: list[int] = []
        burst = [threading.Thread(target=lambda: answers.append(client.get(API + "/cases").status_code))
                 for _ in range(12)]
        for thread in burst:
            thread.start()
        for thread in burst:
            thread.join(timeout=60)
    say(f"[{core.engine.dialect.name}] pool of one, 12 at once: {sorted(answers)}; threads per worker: {tokens}; "
        f"connections opened meanwhile: {len(opened)}")
    assert tokens == 1
    assert answers == [200] * 12
    assert opened == [], "no connection beyond the pool's was opened"


@pytest.mark.parametrize("core", ["postgresql"], indirect=True)
def test_an_api_read_is_one_transaction_its_grant_check_is_outside_any(core: Forlop) -> None:
    """The request's grant check is one statement outside a transaction (no BEGIN and ROLLBACK round trips); the
    list and its access-log row are the request's one transaction."""
    from psycopg.pq import TransactionStatus

    seed_world(core, cases=2)
    states: list[tuple[str, TransactionStatus]] = []

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        kind = "grant" if "FROM user_account JOIN" in statement else statement.split()[0]
        states.append((kind, cursor.connection.info.transaction_status))

    with api(core) as (small, client):
        sa.event.listen(small.engine, "after_cursor_execute", after)
        assert client.get(API + "/cases").status_code == 200
    assert states[0] == ("grant", TransactionStatus.IDLE), states
    assert {state for kind, state in states[1:]} == {TransactionStatus.INTRANS}, "the rest in one transaction"
    assert [kind for kind, _ in states].count("INSERT") == 1, "its access-log row, in that transaction"


@pytest.mark.parametrize("core", ["postgresql"], indirect=True)
def test_a_read_only_postgresql_answers_503_not_500(core: Forlop) -> None:
    ref = seed_world(core, cases=1)[0]
    name = core.engine.url.database
    with core.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    try:
        with api(core) as (_, client):  # new connections: read-only, as on a standby
            write = client.post(f"{API}/cases/{ref}/pause", headers={"If-Match": '"1"'}, json={"reason": "syntetisk"})
    finally:
        with core.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
    say(f"[postgresql] read-only database: write {write.status_code} {write.json()['type']}")
    assert_problem(write, 503, "/problems/database-read-only")


@pytest.mark.parametrize("core", ["postgresql"], indirect=True)
def test_a_write_waiting_on_a_lock_past_the_statement_timeout_gets_503_and_works_once_the_lock_is_gone(
        core: Forlop) -> None:
    ref = seed_world(core, cases=1)[0]
    with api(core, serving=True, db_statement_timeout_seconds=0.5) as (_, client):
        with core.engine.connect() as locker:  # another transaction holds the case's row (a stuck batch job)
            locker.execute(sa.select(case_t.c.id).where(case_t.c.reference == ref).with_for_update())
            started = time.monotonic()
            waited = client.post(f"{API}/cases/{ref}/pause", headers={"If-Match": '"1"'}, json={"reason": "syntetisk"})
            took = time.monotonic() - started
            locker.rollback()
        after = client.post(f"{API}/cases/{ref}/pause", headers={"If-Match": '"1"'}, json={"reason": "syntetisk"})
    say(f"[postgresql] write behind a held row lock, statement timeout 0.5 s: {waited.status_code} "
        f"{waited.json()['type']} after {took:.2f} s; once released: {after.status_code}")
    assert_problem(waited, 503, "/problems/database-timeout")
    assert after.status_code == 200 and after.json()["version"] == 2  # the refused attempt left nothing behind


@pytest.mark.parametrize("core", ["postgresql"], indirect=True)
def test_the_api_statement_timeout_bounds_requests_but_not_its_migrations(core: Forlop) -> None:
    served = bootstrap(core.settings.model_copy(update={"db_statement_timeout_seconds": 0.2}), serving=True)
    try:
        with served.engine.connect() as conn:
            bound = conn.exec_driver_sql("SHOW statement_timeout").scalar_one()
        # The migration has to wait for a lock longer than a request may take (a stand-in for a long index build).
        locker = core.engine.connect()
        locker.exec_driver_sql("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
        release = threading.Timer(0.6, locker.rollback)
        release.start()
        started = time.monotonic()
        try:
            upgrade(served.engine)
        finally:
            release.join()
            locker.close()
        took = time.monotonic() - started
    finally:
        served.close()
    say(f"[postgresql] API statement timeout {bound}; a migration behind a lock held 0.6 s finished after {took:.2f} s")
    assert bound == "200ms"
