"""Registered definition versions, parsed once per process and shared by every case on them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from threading import Lock
from typing import Any

import sqlalchemy as sa

from pathway.definition import PathwayDefinition, load_definition, parse_definition
from pathway.errors import N_, DefinitionError, DefinitionVersionMissing, InvalidArgument, Problem
from pathway.store.engine import WRITE
from pathway.store.fixed import Call, Fixed, together
from pathway.store.tables import definition_t

# Every open asks for the newest version: built once, run on the DBAPI cursor.
_LATEST = Fixed(sa.select(sa.func.max(definition_t.c.version))
                .where(definition_t.c.pathway_id == sa.bindparam("pathway_id")))


# The newest version of each pathway (a list names each case's pathway by its newest title): sent with other
# statements (``DefinitionCatalog.NEWEST``, read back with ``newest_from``).
_NEWEST_OF_EACH = Fixed(sa.select(definition_t.c.pathway_id, sa.func.max(definition_t.c.version))
                        .group_by(definition_t.c.pathway_id))


class DefinitionCatalog:
    """Definition versions by (pathway id, version). A version's text is immutable once registered."""

    NEWEST: Call = (_NEWEST_OF_EACH, {})  # the newest version of each pathway, for ``fixed.together``

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._parsed: dict[tuple[str, int], PathwayDefinition] = {}
        self._lock = Lock()

    def resolve(self, pathway_id: str, version: int, *, conn: sa.Connection | None = None) -> PathwayDefinition:
        """A definition version, parsed once per process. Pass the open connection when inside a transaction."""
        found = self._parsed.get((pathway_id, version))
        if found is not None:
            return found
        query = sa.select(definition_t.c.source).where(
            definition_t.c.pathway_id == pathway_id, definition_t.c.version == version)
        row = self._query(conn, lambda c: c.execute(query).first())
        if row is None:
            raise DefinitionVersionMissing(pathway_id, version)
        definition = parse_definition(row.source, filename=f"{pathway_id}@v{version}")
        self._remember(definition)
        return self._parsed[definition.key]

    def latest(self, pathway_id: str, *, conn: sa.Connection | None = None) -> PathwayDefinition:
        version = self._query(conn, lambda c: _LATEST.rows(c, {"pathway_id": pathway_id})[0][0])
        return self._newest(pathway_id, version, conn)

    def latest_with(self, pathway_id: str, also: Call, *, conn: sa.Connection) -> tuple[PathwayDefinition, Any]:
        """``latest`` inside a transaction, asked together with another statement of it (``fixed.together``: one
        round trip on PostgreSQL), an open's reference number: the definition and what the statement gave."""
        (rows, given) = together(conn, [(_LATEST, {"pathway_id": pathway_id}), also])
        return self._newest(pathway_id, rows[0][0], conn), given

    def newest_from(self, rows: list[tuple[str, int]], pathway_ids: Iterable[str], *,
                    conn: sa.Connection) -> dict[str, PathwayDefinition]:
        """The newest version of each of ``pathway_ids`` that is registered, from the rows that ``NEWEST`` gave."""
        versions = dict(rows)
        return {p: self.resolve(p, versions[p], conn=conn) for p in set(pathway_ids) if p in versions}

    def _newest(self, pathway_id: str, version: int | None, conn: sa.Connection | None) -> PathwayDefinition:
        if version is None:
            raise DefinitionVersionMissing(pathway_id, 0)
        return self.resolve(pathway_id, version, conn=conn)

    def named(self, pathway_id: str, *, field: str = "pathway", conn: sa.Connection | None = None) -> PathwayDefinition:
        """The newest version of a pathway a request names (a filter of the case list or the report); a pathway
        that is not registered is an ``InvalidArgument`` on ``field`` that lists the registered ones (the value
        asked for is not repeated: it is the client's input)."""
        try:
            return self.latest(pathway_id, conn=conn)
        except DefinitionVersionMissing:
            valid = sorted({p for p, _, _ in self.versions()})
            raise InvalidArgument(field, N_("not a registered pathway (one of: {valid})"),
                                  valid=valid) from None

    def _query(self, conn: sa.Connection | None, run):  # type: ignore[no-untyped-def]
        # Inside a unit of work, reuse its connection: SQLite would block a second writer-connection.
        if conn is not None:
            return run(conn)
        with self._engine.connect() as own:
            return run(own)

    def known(self) -> list[PathwayDefinition]:
        """The definitions this process has read so far (to name a code of one without reading the database)."""
        with self._lock:
            return list(self._parsed.values())

    def versions(self) -> list[tuple[str, int, str]]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(definition_t.c.pathway_id, definition_t.c.version, definition_t.c.sha256)
                                .order_by(definition_t.c.pathway_id, definition_t.c.version))
            return [tuple(r) for r in rows]

    def register(self, definition: PathwayDefinition) -> bool:
        """Store a definition version; True if new. The same version with other content is refused."""
        with self._engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            row = conn.execute(sa.select(definition_t.c.sha256).where(
                definition_t.c.pathway_id == definition.id, definition_t.c.version == definition.version)).first()
            if row is not None:
                if row.sha256 != definition.sha256:
                    raise DefinitionError([Problem(
                        f"{definition.id}@v{definition.version}", 1, 1, "version",
                        f"version {definition.version} is already registered with other content; "
                        "give the changed definition a new version number")])
                self._remember(definition)
                return False
            conn.execute(sa.insert(definition_t).values(
                id=uuid.uuid4(), pathway_id=definition.id, version=definition.version,
                sha256=definition.sha256, source=definition.source, registered_at=datetime.now(timezone.utc)))
        self._remember(definition)
        return True

    def _remember(self, definition: PathwayDefinition) -> None:
        with self._lock:
            self._parsed.setdefault(definition.key, definition)

    def register_directory(self, directory: Path) -> list[PathwayDefinition]:
        """Register every ``*.yaml`` in a directory (the shipped and the municipality's definitions)."""
        registered = []
        for path in sorted(directory.glob("*.yaml")):
            definition = load_definition(path)
            if self.register(definition):
                registered.append(definition)
        return registered
