"""The store's boundary for the database's errors: every error of the driver (and the pool's timeout) is raised as
one of the project's (``pathway.errors.DatabaseError`` and its subclasses), so nothing above the store knows
SQLAlchemy's or a driver's exceptions. A state of the database (the disk is full, it is read-only, it did not
answer in time, it cannot be reached) is ``DatabaseUnavailable``: the API answers each with its own 507/503 problem,
the CLI with one clear line; it is never reported as an unexpected error (500).
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.pool import PoolProxiedConnection

from pathway.errors import N_, ConstraintViolated, DatabaseError, DatabaseUnavailable, ValueNotStorable

Kind = Literal["full", "read_only", "cannot_open", "timeout", "unavailable"]

MESSAGES: dict[Kind, str] = {
    "full": N_("the database's disk is full: the change was not saved; free space and try again"),
    "read_only": N_("the database is read-only: the change was not saved"),
    "cannot_open": N_("the database file cannot be opened: check that it and its directory exist and are writable"),
    "timeout": N_("the database did not answer in time; try again shortly"),
    "unavailable": N_("the database is unavailable; try again shortly"),
}

# SQLite primary result codes (the low byte of an extended code; https://sqlite.org/rescode.html):
# BUSY, LOCKED, READONLY, FULL, CANTOPEN (a WAL database on a read-only directory, a missing directory)
_SQLITE: dict[int, Kind] = {5: "timeout", 6: "timeout", 8: "read_only", 13: "full", 14: "cannot_open"}
# PostgreSQL SQLSTATEs: disk_full, read_only_sql_transaction (a standby), query_canceled (statement_timeout),
# lock_not_available (lock_timeout)
_POSTGRES: dict[str, Kind] = {"53100": "full", "25006": "read_only", "57014": "timeout", "55P03": "timeout"}


def install(engine: sa.Engine) -> None:
    """Raise the project's errors instead of the driver's for every statement, transaction and new connection of
    ``engine`` (SQLAlchemy 2 calls ``handle_error`` for a failed connect too)."""
    event.listen(engine, "handle_error", _translate, retval=True)


def _translate(ctx: ExceptionContext) -> BaseException | None:
    # An error of SQLAlchemy's own (not the driver's) is a bug: it stays as it is. Invalidation on a disconnect is
    # unaffected: SQLAlchemy still does it after this hook. (The checkout's ping, ``engine._postgresql_checkout``,
    # is the driver's own call and never comes here.)
    if not isinstance(ctx.sqlalchemy_exception, sa.exc.DBAPIError):
        return None
    return store_error(ctx.sqlalchemy_exception)


def store_error(exc: sa.exc.DBAPIError | sa.exc.TimeoutError) -> DatabaseError:
    """The project's error for a driver's (or the pool's) error."""
    driver = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    name = type(driver).__name__
    if isinstance(exc, sa.exc.DataError):  # a value from the request, whatever the driver's code says
        return ValueNotStorable(name)
    kind = _kind(exc)
    if kind is not None:
        # The driver's first line says which server or file and why ("Connection refused", "disk is full"); the
        # lines after it may quote a value (PostgreSQL's DETAIL).
        first = (str(driver).strip().splitlines() or [""])[0][:200]
        return DatabaseUnavailable(kind, MESSAGES[kind], driver_error=name, first_line=first)
    if isinstance(exc, sa.exc.IntegrityError):
        return ConstraintViolated(name)
    return DatabaseError(name)


def _kind(exc: sa.exc.DBAPIError | sa.exc.TimeoutError) -> Kind | None:
    if isinstance(exc, sa.exc.TimeoutError):  # no pooled connection came free within the pool timeout
        return "timeout"
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _SQLITE:
        return _SQLITE[code & 0xFF]
    state = getattr(exc.orig, "sqlstate", None)
    if isinstance(state, str) and state in _POSTGRES:
        return _POSTGRES[state]
    if isinstance(exc, sa.exc.OperationalError) or exc.connection_invalidated:
        return "unavailable"
    return None


class QueuePool(sa.pool.QueuePool):
    """SQLAlchemy's queue pool, raising ``DatabaseUnavailable`` (timeout) when no connection comes free in time. The
    pool's TimeoutError is raised outside any statement, so ``handle_error`` never sees it; every connection, the
    units of work's and the one-off reads', is checked out here."""

    def connect(self) -> PoolProxiedConnection:
        try:
            return super().connect()
        except sa.exc.TimeoutError as exc:
            raise store_error(exc) from exc
