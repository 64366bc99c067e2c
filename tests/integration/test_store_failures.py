"""The store's engine raises the project's errors, never the driver's: a database that cannot be reached or opened,
is read-only or full, or has no free connection is ``DatabaseUnavailable`` with its kind and the driver's first
line; a value it cannot hold and a broken constraint keep only the driver error's type (its text may quote a value).
The fault suite (tests/resilience) shows the same through the API and the CLI."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pathway.errors import ConstraintViolated, DatabaseError, DatabaseUnavailable, ValueNotStorable
from pathway.store.engine import create_engine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'forlop.db'}", pool_size=1, max_overflow=0, pool_timeout=0.1)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x TEXT UNIQUE)"))
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None) -> Iterator[sa.Engine]:
    if request.param == "postgresql" and postgres_url is None:
        pytest.skip("PostgreSQL not reachable (required and run under CI)")
    engine = create_engine(postgres_url if request.param == "postgresql" else f"sqlite:///{tmp_path / 'forlop.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE failures_t (x TEXT UNIQUE)"))
    yield engine
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE failures_t"))
    engine.dispose()


def test_an_unreachable_postgresql_is_unavailable_and_says_which_server_and_why() -> None:
    engine = create_engine(f"postgresql://postgres@127.0.0.1:{_free_port()}/forlop", connect_timeout=2)
    with pytest.raises(DatabaseUnavailable) as raised:
        engine.connect()
    assert raised.value.kind == "unavailable"
    assert raised.value.message == "the database is unavailable; try again shortly"
    assert raised.value.cause.startswith("OperationalError: connection failed")
    assert "Connection refused" in raised.value.cause and "\n" not in str(raised.value)


def test_a_sqlite_file_in_a_missing_directory_cannot_be_opened(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'forlop.db'}")
    with pytest.raises(DatabaseUnavailable) as raised:
        engine.connect()
    assert raised.value.kind == "cannot_open" and raised.value.cause == "OperationalError: unable to open database file"


def test_a_write_to_a_read_only_sqlite_database_is_refused_as_read_only(sqlite: sa.Engine) -> None:
    with sqlite.connect() as conn:
        conn.exec_driver_sql("PRAGMA query_only = ON")  # as a read-only file would: SQLITE_READONLY
        with pytest.raises(DatabaseUnavailable) as raised:
            conn.execute(sa.text("INSERT INTO t VALUES ('a')"))
        conn.rollback()
        conn.exec_driver_sql("PRAGMA query_only = OFF")
    assert raised.value.kind == "read_only"
    assert str(raised.value) == ("the database is read-only: the change was not saved "
                                 "(OperationalError: attempt to write a readonly database)")


def test_a_write_that_finds_the_sqlite_database_full_is_refused_as_full(sqlite: sa.Engine) -> None:
    with sqlite.connect() as conn:
        conn.exec_driver_sql("PRAGMA max_page_count = 4")  # as a full disk would: SQLITE_FULL
        conn.commit()
        with pytest.raises(DatabaseUnavailable) as raised, conn.begin():
            for n in range(100):
                conn.execute(sa.text("INSERT INTO t VALUES (:x)"), {"x": f"{n}" * 2000})
    assert raised.value.kind == "full" and raised.value.cause == "OperationalError: database or disk is full"


def test_no_free_connection_in_the_pool_within_its_timeout_is_a_timeout(sqlite: sa.Engine) -> None:
    held = sqlite.connect()
    try:
        with pytest.raises(DatabaseUnavailable) as raised:
            sqlite.connect()
    finally:
        held.close()
    assert raised.value.kind == "timeout" and raised.value.cause.startswith("TimeoutError: QueuePool limit")
    with sqlite.connect() as conn:  # free again: the pool works on
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1


def test_a_broken_constraint_keeps_only_the_drivers_error_type_never_the_value(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO failures_t VALUES ('Kari Nordmann')"))
    with pytest.raises(ConstraintViolated) as raised, engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO failures_t VALUES ('Kari Nordmann')"))
    assert raised.value.driver_error in ("IntegrityError", "UniqueViolation")  # sqlite3's, psycopg's
    assert str(raised.value) == f"database error ({raised.value.driver_error})"
    with engine.connect() as conn:  # the failed transaction was rolled back; the connection works on
        assert conn.execute(sa.text("SELECT count(*) FROM failures_t")).scalar_one() == 1


def test_a_statement_the_database_cannot_run_is_a_bug_on_postgresql(engine: sa.Engine) -> None:
    with pytest.raises(DatabaseError) as raised, engine.connect() as conn:
        conn.execute(sa.text("SELECT nothing FROM failures_t"))
    if engine.dialect.name == "postgresql":
        assert type(raised.value) is DatabaseError and str(raised.value) == "database error (UndefinedColumn)"
    else:  # SQLite reports it as an OperationalError, which it also uses for its states: counted as unavailable
        assert isinstance(raised.value, DatabaseUnavailable) and raised.value.driver_error == "OperationalError"


def test_a_value_postgresql_cannot_hold_is_not_storable(engine: sa.Engine) -> None:
    if engine.dialect.name == "sqlite":  # SQLite stores a NUL character like any other
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO failures_t VALUES (:x)"), {"x": "a\x00b"})
            assert conn.execute(sa.text("SELECT x FROM failures_t")).scalar_one() == "a\x00b"
        return
    with pytest.raises(ValueNotStorable) as raised, engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO failures_t VALUES (:x)"), {"x": "a\x00b"})
    assert str(raised.value) == "database error (DataError)"
