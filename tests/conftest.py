"""Shared test fixtures: databases (SQLite always, PostgreSQL over a real connection) and the wired core."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pathway.bootstrap import Forlop, bootstrap
from pathway.settings import Settings
from tests.suite import clock, processes

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


_CLOCK = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    processes.mark_run()
    config.stash[_CLOCK] = clock.start()


def pytest_report_header(config: pytest.Config) -> str:
    return config.stash[_CLOCK]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what a run at TEST_DATES leaves to today's run (see the Makefile): the tests given the PostgreSQL
    database (the calendar is Python's, the same on both; their SQLite twins run at each date) and those that drive
    Chromium (the pages' dates are checked in-process)."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        params = getattr(getattr(item, "callspec", None), "params", {}).values()
        if "postgresql" in params or ("postgres_url" in fixtures and "sqlite" not in params):
            item.add_marker(pytest.mark.postgresql)
        if "browser" in fixtures:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session) -> object:
    """End what this process started; in the controller (after xdist's workers are gone), fail the run if any
    process of it is still alive, and end those too."""
    result = yield
    processes.end_all()
    if not hasattr(session.config, "workerinput"):
        left = processes.leftovers()
        if left:
            processes.kill_leftovers()
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            lines = [f"{len(left)} process(es) started by the suite were still running at its end (now ended):", *left]
            if reporter is not None:
                reporter.write_line("\n".join(lines), red=True, bold=True)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    return result


def _postgres_admin_url() -> str | None:
    """The PostgreSQL server to test against; None if not reachable outside CI (CI must have it)."""
    url = os.environ.get("FORLOP_TEST_POSTGRES_URL", DEFAULT_PG)
    try:
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return url
    except sa.exc.OperationalError:
        if os.environ.get("CI"):
            raise RuntimeError(f"PostgreSQL is required under CI and not reachable at {url}") from None
        return None


@pytest.fixture(scope="session")
def postgres_url(worker_id: str) -> Iterator[str | None]:
    """A private database on the test server for this test process, dropped at the end."""
    admin_url = _postgres_admin_url()
    if admin_url is None:
        yield None
        return
    name = f"forlop_test_{worker_id}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


def _data_tables() -> list[str]:
    """Every table but the registered definitions (kept: they are the same in every test)."""
    from sqlmodel import SQLModel

    import pathway.store.tables  # noqa: F401

    return [t for t in SQLModel.metadata.tables if t != "pathway_definition"]


@pytest.fixture(params=["sqlite", "postgresql"])
def core(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None) -> Iterator[Forlop]:
    """The wired core on a migrated, empty database: the same tests run on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'forlop.db'}"
    else:
        if postgres_url is None:
            pytest.skip("PostgreSQL not reachable (required and run under CI)")
        url = postgres_url
    forlop = bootstrap(Settings(env="test", database_url=url, definitions_dir=ROOT / "definitions"))
    if request.param == "postgresql":
        with forlop.engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {', '.join(_data_tables())} CASCADE"))
    yield forlop
    forlop.close()
