"""Build the SQLAlchemy engine for SQLite (WAL, foreign keys, immediate transactions) or PostgreSQL; it raises the
project's errors (``pathway.store.failures``), never the driver's."""

from __future__ import annotations

import os
import select
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from pathway.store import failures, fixed

WRITE = "forlop_write"  # execution option marking a connection that will write


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 5, max_overflow: int | None = None,
                  pool_timeout: float = 30.0, connect_timeout: int = 10, statement_timeout: float | None = None,
                  echo: bool = False) -> sa.Engine:
    """An engine with a bounded pool: a request waits at most ``pool_timeout`` for a connection, a new PostgreSQL
    connection at most ``connect_timeout`` seconds, and (if given) a PostgreSQL statement at most
    ``statement_timeout`` seconds, lock waits included; so a database outage fails requests fast, never hangs them."""
    url = normalise_url(url)
    pool: dict[str, Any] = {"poolclass": failures.QueuePool, "pool_size": pool_size, "pool_timeout": pool_timeout,
                            "max_overflow": pool_size if max_overflow is None else max_overflow}
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database in (None, "", ":memory:"):
            pool = {}  # an in-memory database lives in one connection (SingletonThreadPool): no pool to size
        else:
            _create_private(Path(database))
        engine = sa.create_engine(url, echo=echo, connect_args={"timeout": 30}, **pool)
        _sqlite_setup(engine, sqlite_synchronous)
    else:
        connect_args: dict[str, Any] = {"connect_timeout": connect_timeout}
        if statement_timeout:
            connect_args["options"] = f"-c statement_timeout={int(statement_timeout * 1000)}"
        engine = sa.create_engine(url, echo=echo, connect_args=connect_args, **pool)
        _postgresql_checkout(engine)
    failures.install(engine)
    return engine


# A pooled connection idle longer than this is pinged at checkout (PgBouncer's server_check_delay, 30 s by default):
# a drop that sends nothing, a firewall forgetting an idle connection, shows no other way.
PING_AFTER = 30.0


def _postgresql_checkout(engine: sa.Engine) -> None:
    """Replace at checkout a pooled connection the server ended (a restart, a terminated backend, a failover that
    closes the old primary's connections), so that no request fails on it, without a ping's round trip at every
    checkout (SQLAlchemy's ``pool_pre_ping``: one of a write's few round trips, issue 19). A server that ends a
    connection says so: its FATAL message, or at least the socket's end, waits unread on the idle connection, which a
    zero-timeout poll of the socket sees for free. Such a connection, and one idle longer than ``PING_AFTER``, is
    pinged; one that fails the ping is replaced (``DisconnectionError``: the pool discards it and checks out
    another, or connects anew). What sends nothing (a host that vanished, a firewall that forgot the connection) is
    found by the ping once the connection has been idle for ``PING_AFTER``; before that, the first request on it
    fails (503, the database unavailable) and Core invalidates the whole pool, so the next requests connect anew."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        record.info["forlop_idle_from"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_from = record.info.pop("forlop_idle_from", None)
        if idle_from is None:  # new: just connected
            return
        if time.monotonic() - idle_from <= PING_AFTER and not _has_input(dbapi_conn):
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error:
            alive = False
        if not alive:
            raise sa.exc.DisconnectionError("the server ended the pooled connection")


def _has_input(dbapi_conn: Any) -> bool:
    """Whether an idle connection's socket has something to read: a FATAL, its end, or now and then a harmless
    message (a ParameterStatus after the server's configuration is reloaded), which costs a ping and nothing more.
    Nothing here LISTENs."""
    if dbapi_conn.closed:
        return True
    poll = select.poll()  # not select(): a busy worker's descriptors may pass its limit of 1024
    poll.register(dbapi_conn.fileno(), select.POLLIN)
    return bool(poll.poll(0))


def single_read(engine: sa.Engine) -> sa.Connection:
    """A connection for one read statement (a request's grant check): on PostgreSQL outside a transaction, so the
    read costs no BEGIN and ROLLBACK round trips and a request makes one transaction, its own (one statement is
    atomic on its own). SQLite's deferred read transaction costs nothing, and its connections stay as they are."""
    conn = engine.connect()
    return conn.execution_options(isolation_level="AUTOCOMMIT") if conn.dialect.name == "postgresql" else conn


def checkpoint(engine: sa.Engine) -> None:
    """SQLite: copy the write-ahead log into the database file and empty it, so that what was just deleted (zeroed
    there by ``secure_delete``) is not still readable in the log. Nothing on PostgreSQL."""
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()  # outside any transaction: a checkpoint cannot pass the connection's own read
        try:
            cur = raw.cursor()
            cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cur.close()
        finally:
            raw.close()


def _create_private(path: Path) -> None:
    """Create a new SQLite file readable by its owner alone; SQLite gives its -wal and -shm files the same mode.
    Where it cannot be made (a read-only place), SQLite reports that itself when it opens the file."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        pass


def _sqlite_setup(engine: sa.Engine, synchronous: str) -> None:
    if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise ValueError(f"sqlite synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see "begin" below).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cur.execute("PRAGMA busy_timeout=30000")
        # A deleted row (an erased case's person record, its destroyed key) is overwritten with zeros in the file,
        # not left in a free page to be read back with a hex editor.
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A unit of work takes the write lock up front, so two writers never deadlock upgrading a read lock;
        # readers stay deferred and never block writers (WAL).
        # On the DBAPI cursor (``fixed.run_sql``): every unit of work begins so, and through Core's execution
        # context the BEGIN cost more than SQLite's work for it.
        fixed.run_sql(conn, "BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")
