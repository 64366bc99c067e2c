"""What a change costs PostgreSQL in round trips, and how a pooled connection is checked out (issue 19).

Opening a case is four round trips: BEGIN, the pathway's newest version with the case's reference number, the case's
rows, COMMIT. A step is four too: the transaction's BEGIN, the case's load (its row, steps and tasks sent together), its
writes (the case row under its version check, the steps, tasks and events, sent together) and the COMMIT. A page of
the case list is five: BEGIN, its count, its cases, their urgent steps and alerts with the pathways' newest
versions and the access-log row, COMMIT. Checking
a connection out of the pool costs none while it was in use a moment ago; a connection the server ended meanwhile
is replaced at checkout, not failed on, and one idle for long is pinged first. Counted in libpq's trace of the
protocol, never timed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pathway import services
from pathway.bootstrap import Forlop, bootstrap
from pathway.case.commands import CompleteStep, CreateHandover, RecordConsent
from pathway.store import engine as store_engine
from tests.suite.pgtrace import round_trips

from .support import add_user, open_case

pytestmark = pytest.mark.parametrize("core", ["postgresql"], indirect=True)

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def single(core: Forlop) -> Iterator[Forlop]:
    """The core over a pool of one connection, so that every unit of work runs on the same one."""
    other = bootstrap(core.settings.model_copy(update={"scheduler": "off", "db_pool_size": 1, "db_max_overflow": 0}),
                      migrate=False, register_definitions=False)
    yield other
    other.close()


def _pgconn(core: Forlop) -> Any:
    with core.engine.connect() as conn:
        return conn.connection.driver_connection.pgconn  # type: ignore[union-attr]


def _backend(core: Forlop) -> int:
    with core.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def _change(core: Forlop, ref: str, version: int, command: Any) -> int:
    case, _ = services.change_case(uow=core.uow(), reference=ref, expected_version=version,
                                   change=lambda c: c.execute(command, actor="k1", at=T0))
    return case.version


def test_a_step_is_four_round_trips_begin_its_load_its_writes_and_commit(single: Forlop, tmp_path: Path) -> None:
    add_user(single, "k1")
    open_case(single, T0)  # the first: its definition is read and parsed
    pgconn = _pgconn(single)
    with round_trips(pgconn, tmp_path / "open") as opening:  # BEGIN, the version with the number, the rows, COMMIT
        ref = open_case(single, T0)
    assert opening == [4]
    with round_trips(pgconn, tmp_path / "complete") as complete:
        assert _change(single, ref, 1, CompleteStep("K1")) == 2
    _change(single, ref, 2, RecordConsent("police", scope=["name", "contact", "threat_assessment"], given=True))
    with round_trips(pgconn, tmp_path / "handover") as handover:  # a new row of another table among the writes
        assert _change(single, ref, 3, CreateHandover("K6")) == 4
    assert _pgconn(single) is pgconn, "the same connection throughout"
    assert complete == handover == [4]


def test_a_pooled_connection_the_server_ended_is_replaced_at_checkout_not_failed_on(single: Forlop) -> None:
    add_user(single, "k1")
    ref = open_case(single, T0)
    pooled = _backend(single)
    admin = sa.create_engine(single.engine.url)  # another session ends it, as a restart or an administrator would
    try:
        with admin.connect() as conn:  # and waits (up to 5 s) until the backend has gone
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pooled}).scalar_one()
    finally:
        admin.dispose()
    assert _change(single, ref, 1, CompleteStep("K1")) == 2, "the change goes through, on a new connection"
    assert _backend(single) != pooled


def test_a_connection_in_use_a_moment_ago_is_not_pinged_one_idle_for_long_is_and_kept(
        single: Forlop, monkeypatch: pytest.MonkeyPatch) -> None:
    pings: list[Any] = []
    ping = single.engine.dialect.do_ping
    monkeypatch.setattr(single.engine.dialect, "do_ping", lambda conn: pings.append(conn) or ping(conn))
    pooled = _backend(single)
    assert (_backend(single), pings) == (pooled, []), "checked out again at once: no ping"
    monkeypatch.setattr(store_engine, "PING_AFTER", 0.0)  # every connection has been idle for long
    assert (_backend(single), len(pings)) == (pooled, 1), "pinged, found alive and kept"


def test_a_page_of_the_case_list_is_five_round_trips_whatever_its_length(single: Forlop, tmp_path: Path) -> None:
    from starlette.requests import Request

    from api.routes.cases import case_list
    from pathway.accounts import active_user

    add_user(single, "k1")
    request = Request({"type": "http", "client": ("127.0.0.1", 50000), "headers": []})
    with single.engine.connect() as conn:
        user = active_user(conn, "k1")
    assert user is not None
    pgconn = _pgconn(single)
    title = single.catalog.latest("krisesenter").title.get(user.language)
    for cases in (1, 30):
        while len(case_list(request, single, user, limit=50).items) < cases:
            open_case(single, T0)
        logged = _count(single, "SELECT count(*) FROM access_log WHERE action = 'case.list' AND username = 'k1'")
        with round_trips(pgconn, tmp_path / f"list{cases}") as listing:
            page = case_list(request, single, user, limit=50)
        assert listing == [5]
        assert len(page.items) == page.total == cases
        assert {item.pathway_title for item in page.items} == {title}
        assert _count(single, "SELECT count(*) FROM access_log WHERE action = 'case.list' AND username = 'k1'") == (
            logged + 1), "the read is in the access log"


def _count(core: Forlop, sql: str) -> int:
    with core.engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())
