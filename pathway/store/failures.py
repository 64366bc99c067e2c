"""Which database failure an error stands for: the disk is full, the database is read-only, it did not answer in
time, or it cannot be reached. The API answers each with its own 507/503 problem, the CLI with one clear line:
a state of the database is never reported as an unexpected error (500).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

Kind = Literal["full", "read_only", "cannot_open", "timeout", "unavailable"]

MESSAGES: dict[Kind, str] = {
    "full": "the database's disk is full: the change was not saved; free space and try again",
    "read_only": "the database is read-only: the change was not saved",
    "cannot_open": "the database file cannot be opened: check that it and its directory exist and are writable",
    "timeout": "the database did not answer in time; try again shortly",
    "unavailable": "the database is unavailable; try again shortly",
}

# SQLite primary result codes (the low byte of an extended code; https://sqlite.org/rescode.html):
# BUSY, LOCKED, READONLY, FULL, CANTOPEN (a WAL database on a read-only directory, a missing directory)
_SQLITE: dict[int, Kind] = {5: "timeout", 6: "timeout", 8: "read_only", 13: "full", 14: "cannot_open"}
# PostgreSQL SQLSTATEs: disk_full, read_only_sql_transaction (a standby), query_canceled (statement_timeout),
# lock_not_available (lock_timeout)
_POSTGRES: dict[str, Kind] = {"53100": "full", "25006": "read_only", "57014": "timeout", "55P03": "timeout"}


@dataclass(frozen=True)
class DatabaseFailure:
    kind: Kind

    @property
    def message(self) -> str:
        return MESSAGES[self.kind]


def database_failure(exc: BaseException) -> DatabaseFailure | None:
    """The failure ``exc`` stands for, or None if it is not about the database's state (a bug, bad data)."""
    if isinstance(exc, sa.exc.TimeoutError):  # no pooled connection came free within the pool timeout
        return DatabaseFailure("timeout")
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _SQLITE:
        return DatabaseFailure(_SQLITE[code & 0xFF])
    state = getattr(orig, "sqlstate", None)
    if isinstance(state, str) and state in _POSTGRES:
        return DatabaseFailure(_POSTGRES[state])
    if isinstance(exc, sa.exc.OperationalError) or exc.connection_invalidated:
        return DatabaseFailure("unavailable")
    return None
