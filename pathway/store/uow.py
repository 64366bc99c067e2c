"""The unit of work: one transaction around every change. Commit is explicit; rollback is the default."""

from __future__ import annotations

from functools import partial
from types import TracebackType

import sqlalchemy as sa

from pathway.store.catalog import DefinitionCatalog
from pathway.store.engine import WRITE
from pathway.store.repository import CaseRepository


class UnitOfWork:
    """``with uow: ...; uow.commit()``. Leaving the block without ``commit`` rolls everything back.

    ``read_only``: for reads that must see a case whole (the case page, ``forlop case show``)."""

    def __init__(self, engine: sa.Engine, catalog: DefinitionCatalog, *, read_only: bool = False) -> None:
        self.engine = engine
        self.catalog = catalog
        self.read_only = read_only
        self.conn: sa.Connection
        self.cases: CaseRepository

    def __enter__(self) -> UnitOfWork:
        conn = self.engine.connect()
        if not self.read_only:
            self.conn = conn.execution_options(**{WRITE: True})
        elif conn.dialect.name == "postgresql":
            # One snapshot for every statement of the read: under READ COMMITTED each statement sees the latest
            # commit, so a write committed between the case row and its steps would be shown half. (SQLite's
            # deferred read transaction is one snapshot already, and unlike a writer's it blocks no one.)
            self.conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        else:
            self.conn = conn
        self._tx = self.conn.begin()
        self.cases = CaseRepository(self.conn, partial(self.catalog.resolve, conn=self.conn))
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
