"""The unit of work: one transaction around every change. Commit is explicit; rollback is the default."""

from __future__ import annotations

from functools import partial
from types import TracebackType

import sqlalchemy as sa

from pathway.store.catalog import DefinitionCatalog
from pathway.store.engine import WRITE
from pathway.store.repository import CaseRepository


class UnitOfWork:
    """``with uow: ...; uow.commit()``. Leaving the block without ``commit`` rolls everything back."""

    def __init__(self, engine: sa.Engine, catalog: DefinitionCatalog) -> None:
        self.engine = engine
        self.catalog = catalog
        self.conn: sa.Connection
        self.cases: CaseRepository

    def __enter__(self) -> UnitOfWork:
        self.conn = self.engine.connect().execution_options(**{WRITE: True})
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
