"""The unit of work: one transaction around every change. Commit is explicit; rollback is the default."""

from __future__ import annotations

from functools import partial
from types import TracebackType

import sqlalchemy as sa

from pathway.crypto import KeyRing
from pathway.store.catalog import DefinitionCatalog
from pathway.store.engine import WRITE
from pathway.store.repository import CaseRepository


class UnitOfWork:
    """``with uow: ...; uow.commit()``. Leaving the block without ``commit`` rolls everything back.

    ``read_only``: for reads that must see a case whole (``forlop case show``). ``snapshot``: the same one snapshot
    for a read that also appends (its access-log row), so that the access check, the read and the log row are one
    transaction (the API's and the pages' reads)."""

    def __init__(self, engine: sa.Engine, catalog: DefinitionCatalog, *, read_only: bool = False,
                 snapshot: bool = False, keys: KeyRing | None = None) -> None:
        self.engine = engine
        self.catalog = catalog
        self.keys = keys  # the master key ring: unwraps each case's own key
        self.read_only = read_only
        self.snapshot = snapshot
        self.conn: sa.Connection
        self.cases: CaseRepository

    def __enter__(self) -> UnitOfWork:
        conn = self.engine.connect()
        if conn.dialect.name == "postgresql" and (self.read_only or self.snapshot):
            # One snapshot for every statement of the read: under READ COMMITTED each statement sees the latest
            # commit, so a write committed between the case row and its steps would be shown half. (An insert, the
            # access-log row, never conflicts with a concurrent writer, so a snapshot may append.)
            self.conn = conn.execution_options(isolation_level="REPEATABLE READ")
        elif not self.read_only:
            # SQLite: a writer takes the write lock up front; so does a snapshot that appends, as a deferred read that
            # wrote later would be refused (SQLITE_BUSY_SNAPSHOT) after any commit since it began. SQLite's deferred
            # read transaction is one snapshot already, and unlike a writer's it blocks no one.
            self.conn = conn.execution_options(**{WRITE: True})
        else:
            self.conn = conn
        self._tx = self.conn.begin()
        if self.read_only and self.conn.dialect.name == "postgresql":
            # For this transaction only: the connection option (postgresql_readonly) is reset to READ WRITE when the
            # connection goes back to the pool, and every later transaction on it would then state READ WRITE,
            # overriding a database's default_transaction_read_only (a standby's writes would no longer be refused).
            self.conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        self.cases = CaseRepository(self.conn, partial(self.catalog.resolve, conn=self.conn), self.keys)
        return self

    def commit(self) -> None:
        self._tx.commit()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._tx.is_active:
                self._tx.rollback()
        finally:
            self.conn.close()
