"""The hot path's fixed statements on the DBAPI cursor of the caller's transaction (issue 19).

Through Core, reading a case by reference cost 74 µs against 7 µs on the bare driver, and its steps 148 µs against
27 µs: a statement's execution context, its parameters' and rows' type processors and its row objects cost more than
the database. A ``Fixed`` statement is a Core statement rendered once per database (Core's SQL, bind casts included;
on psycopg with positional ``%s`` placeholders), run on the connection's own DBAPI cursor in its transaction (begun
first if it has not, as Core's autobegin would), with its values converted by hand for the column types the case
tables use (``_CODECS``: what SQLAlchemy's processors and ``UTCDateTime`` do; any other type with a processor is
refused when the statement is rendered, never passed through unconverted).

What Core gives every statement is kept: a driver's error goes through Core's own handling (the engine's
``handle_error``, which raises the project's errors, ``pathway.store.failures``; a dropped connection invalidated),
and the connection's ``before_cursor_execute``/``after_cursor_execute`` events fire, so the statement hooks of the
tests and of ``bench/engine.py``'s raw baseline see these statements too.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from psycopg import pq
from psycopg.types.json import Json

from pathway.store.tables.columns import UTCDateTime, as_utc, to_utc

Convert = Callable[[Any], Any] | None  # None: the driver's value as it is
_PYFORMAT = re.compile(r"%\((\w+)\)s")
_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg"}  # the drivers whose values the codecs below know


def _sqlite_time(value: datetime) -> str:
    return _sqlite_utc_text(to_utc(value))  # a naive time raises here


@lru_cache(maxsize=16_384)
def _sqlite_utc_text(at: datetime) -> str:
    # A case's times are written again with every change of their rows (a step's created, anchor and due times when
    # it ends): their text is remembered, keyed by the time in UTC (not as given: two local times equal but for
    # ``fold`` are an hour apart, while UTC has one time per instant).
    return at.replace(tzinfo=None).isoformat(" ", "microseconds")


# A case's ids and times are read again with every load of it: remembered too (both immutable, keyed by their text).
@lru_cache(maxsize=16_384)
def _sqlite_time_read(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text))


_sqlite_uuid = lru_cache(maxsize=16_384)(uuid.UUID)


class UuidList(sa.types.TypeDecorator[list[uuid.UUID]]):
    """UUIDs bound as one parameter of a ``Fixed`` statement (``any_of``): an array on PostgreSQL, on SQLite a JSON
    array of their 32 hex digits (as SQLite keeps a Uuid)."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        return dialect.type_descriptor(postgresql.ARRAY(sa.Uuid) if dialect.name == "postgresql" else sa.JSON())


class _AnyOf(ColumnElement[bool]):
    inherit_cache = False  # rendered once by Fixed; never through Core's statement cache

    def __init__(self, column: sa.ColumnElement[Any], ids: sa.BindParameter[Any]) -> None:
        self.column, self.ids = column, ids
        self.type = sa.types.NullType()  # type: ignore[assignment] # no "= 1" appended where SQLite has no booleans


def any_of(column: sa.ColumnElement[Any], name: str = "ids") -> ColumnElement[bool]:
    """``column`` is one of the UUIDs given as the one parameter ``name`` (a list): ``= ANY(array)`` on PostgreSQL,
    ``IN (SELECT value FROM json_each(...))`` on SQLite. Core's expanding IN binds each id and renders a statement
    per number of ids (longer than psycopg's parse cache keeps)."""
    return _AnyOf(column, sa.bindparam(name, type_=UuidList()))


@compiles(_AnyOf, "postgresql")
def _any_of_postgresql(element: _AnyOf, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column == sa.func.any(element.ids), **kw)


@compiles(_AnyOf)
def _any_of_sqlite(element: _AnyOf, compiler: SQLCompiler, **kw: Any) -> str:
    values: sa.Select[Any] = sa.select(sa.column("value")).select_from(sa.func.json_each(element.ids))
    return compiler.process(element.column.in_(values), **kw)


def _hex_json(ids: Iterable[uuid.UUID]) -> str:
    return json.dumps([i.hex for i in ids])


# Per dialect and column type: (to the driver, from the driver), each called for values that are not None (JSON's
# bind also for None, which it writes as JSON null, as SQLAlchemy's JSON type does). SQLite keeps a Uuid as 32 hex
# digits, a time as "YYYY-MM-DD HH:MM:SS.ffffff" in UTC without an offset, JSON as text and a boolean as 0/1
# (SQLAlchemy's formats, so rows written either way read alike); psycopg adapts UUIDs, aware times and booleans.
_CODECS: dict[str, dict[type[Any], tuple[Convert, Convert]]] = {
    "sqlite": {
        UuidList: (_hex_json, None),
        sa.Uuid: (attrgetter("hex"), _sqlite_uuid),
        UTCDateTime: (_sqlite_time, _sqlite_time_read),
        sa.JSON: (json.dumps, json.loads),
        sa.Boolean: (None, bool),
        sa.LargeBinary: (None, None),  # bytes, either way
    },
    "postgresql": {
        UuidList: (list, None),
        sa.Uuid: (None, None),
        UTCDateTime: (to_utc, as_utc),
        sa.JSON: (Json, None),  # psycopg reads JSON itself
        sa.Boolean: (None, None),
        sa.LargeBinary: (None, None),
    },
}
_ALSO_NONE = {json.dumps, Json}  # binds that take None too
_IMMUTABLE = {_sqlite_uuid, _sqlite_time_read, as_utc}  # reads whose results may be shared between rows


def _codec(dialect: sa.Dialect, type_: Any) -> tuple[Convert, Convert]:
    if isinstance(type_, postgresql.ARRAY) and dialect.name == "postgresql" and _codec(dialect, type_.item_type) == (
            None, None):
        return list, None  # psycopg adapts a list of values it adapts as they are (UUIDs, text, numbers)
    codecs = _CODECS[dialect.name]
    for kind in type(type_).__mro__:
        if kind in codecs:
            return codecs[kind]
    # Any other type must need no conversion on this driver (text, numbers): one that Core converts would be
    # passed through unconverted here, and read or stored differently.
    try:
        plain = type_._cached_bind_processor(dialect) is None and type_._cached_result_processor(dialect, None) is None
    except Exception:  # noqa: BLE001 - a processor that needs the driver's column type: one all the same
        plain = False
    if not plain:
        raise TypeError(f"no codec for {type_!r} on {dialect.name}")
    return None, None


class _Rendered:
    """A statement's SQL for one dialect, its parameters in order with their converters, its columns' converters."""

    def __init__(self, statement: sa.ClauseElement, dialect: sa.Dialect) -> None:
        if _DRIVERS.get(dialect.name) != dialect.driver:
            raise TypeError(f"no codecs for the driver {dialect.driver} of {dialect.name}")
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        sql = compiled.string
        if compiled.positiontup is not None:  # qmark (sqlite3)
            names = list(compiled.positiontup)
        else:  # pyformat (psycopg): made positional, the order the names appear in
            names = _PYFORMAT.findall(sql)
            sql = _PYFORMAT.sub("%s", sql)
        self.sql = sql
        self.names = tuple(names)
        # A literal of the statement (``last + 1``) is a bind with its value; the caller's parameters go over it.
        self._literals = {n: b.effective_value for n, b in compiled.binds.items() if not b.required}
        self._take = itemgetter(*names) if len(names) > 1 else (lambda p: (p[names[0]],)) if names else (lambda p: ())
        binds = [(i, _codec(dialect, compiled.binds[n].type)[0]) for i, n in enumerate(names)]
        self._bind_always: list[tuple[int, Callable[[Any], Any]]] = [
            (i, f) for i, f in binds if f is not None and f in _ALSO_NONE]
        self._bind: list[tuple[int, Callable[[Any], Any]]] = [
            (i, f) for i, f in binds if f is not None and f not in _ALSO_NONE]
        columns = compiled._result_columns  # what Core reads a row by (raises, not silently empty, if it changes)
        dml = compiled.isinsert or compiled.isupdate or compiled.isdelete
        if bool(columns) != (not dml or bool(compiled.effective_returning)):
            raise TypeError("Core's result columns are not where a Fixed statement reads its rows")
        self.fetches = bool(columns)  # a SELECT, or DML with RETURNING: it gives rows
        reads = [(i, f) for i, f in ((i, _codec(dialect, c[3])[1]) for i, c in enumerate(columns)) if f is not None]
        # A memo per conversion that gives an immutable value (never a value of another column's; never JSON's
        # dicts and lists, which would be shared between rows): -1 converts every time.
        kinds = list(dict.fromkeys(f for _, f in reads if f in _IMMUTABLE))
        self._read: list[tuple[int, Callable[[Any], Any], int]] = [
            (i, f, kinds.index(f) if f in _IMMUTABLE else -1) for i, f in reads]
        self._kinds = len(kinds)

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        values = list(self._take({**self._literals, **params} if self._literals else params))
        for i, f in self._bind:
            v = values[i]
            if v is not None:
                values[i] = f(v)
        for i, f in self._bind_always:
            values[i] = f(values[i])
        return tuple(values)  # one parameter set is a tuple, several a list of them (as hooks and drivers expect)

    def parameter_sets(self, params: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> tuple[Any, bool]:
        """The driver's arguments and whether they are several sets (for ``executemany``). One set is executed, not
        executemany'd: psycopg's executemany would enter and leave a pipeline for it."""
        if isinstance(params, Mapping):
            return self.args(params), False
        sets = list(params)
        return ([self.args(p) for p in sets], True) if len(sets) != 1 else (self.args(sets[0]), False)

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """The rows with their values converted. A value that repeats in the rows (a case's steps share their
        times) is converted once and shared, which also keeps a loaded case smaller."""
        if not self._read:
            return [tuple(r) for r in raw]
        read = self._read
        memos: list[dict[Any, Any]] = [{} for _ in range(self._kinds)]
        out = []
        for r in raw:
            values = list(r)
            for i, f, k in read:
                v = values[i]
                if v is not None and k < 0:
                    values[i] = f(v)
                elif v is not None:
                    seen = memos[k]
                    converted = seen.get(v)
                    if converted is None:
                        converted = seen[v] = f(v)
                    values[i] = converted
            out.append(tuple(values))
        return out


class Fixed:
    """A Core statement run on the DBAPI cursor: ``rows`` for a SELECT, ``run`` for DML (one or many parameter
    sets; returns the row count). Parameters are given by their bind names, as to ``Connection.execute``."""

    def __init__(self, statement: sa.ClauseElement) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Rendered] = {}  # two threads at once may render it twice, alike

    def _rendered(self, conn: sa.Connection) -> _Rendered:
        rendered = self._by_dialect.get(conn.dialect.name)
        if rendered is None:
            rendered = self._by_dialect[conn.dialect.name] = _Rendered(self.statement, conn.dialect)
        return rendered

    def rows(self, conn: sa.Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = together(conn, [(self, params)])[0]
        return rows

    def run(self, conn: sa.Connection, params: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> int:
        count: int = together(conn, [(self, params)])[0]
        return count


Call = tuple[Fixed, Mapping[str, Any] | Iterable[Mapping[str, Any]]]


def together(conn: sa.Connection, calls: Sequence[Call]) -> list[Any]:
    """Several statements at once, each one's result as ``rows`` (a SELECT, or DML with RETURNING: its rows) or
    ``run`` (DML: its row count) gives it. On psycopg in one round trip (its pipeline mode,
    https://www.psycopg.org/psycopg3/docs/advanced/pipeline.html): the server runs them in the order given, each
    seeing what the ones before it did, as one after another would; a load's three SELECTs and a save's writes each
    cost one round trip instead of one per statement (psycopg sends a transaction's BEGIN in a round trip of its own
    first). Elsewhere (sqlite3, in-process) one after another, with the same results.

    Every call is checked before any is sent (a statement that gives rows takes one parameter set). An error in one
    of them leaves the ones after it unrun and is raised as for a single statement; the transaction is then failed,
    as after any statement's error, and rolled back by its unit of work."""
    sends = []
    for f, params in calls:
        rendered = f._rendered(conn)  # noqa: SLF001
        args, many = rendered.parameter_sets(params)
        if many and rendered.fetches:
            raise TypeError("a statement that gives rows takes one parameter set")
        sends.append((rendered, args, many))
    if not conn.in_transaction():
        conn.begin()  # as Core's execute would: the statements run in the connection's transaction, never beside it
    if conn.dialect.name != "postgresql" or len(sends) == 1:
        return [_result(rendered, _execute(conn, rendered.sql, args, many=many, fetch=rendered.fetches))
                for rendered, args, many in sends]
    dbapi_conn = conn.connection
    sent: list[list[Any]] = []  # [cursor, rendered, the SQL and arguments as sent, many]
    try:
        with dbapi_conn.driver_connection.pipeline():  # type: ignore[union-attr]
            for rendered, args, many in sends:
                sent.append([dbapi_conn.cursor(), rendered, rendered.sql, args, many])
                sent[-1][2:4] = _send(conn, sent[-1][0], rendered.sql, args, many)
        # The pipeline is synced: every result is in. The statements have run, so their hooks fire now.
        results = []
        for cursor, rendered, sql, args, many in sent:
            if conn.dispatch.after_cursor_execute:
                conn.dispatch.after_cursor_execute(conn, cursor, sql, args, None, many)
            results.append(_result(rendered, cursor.fetchall() if rendered.fetches else cursor.rowcount))
            cursor.close()
    except conn.dialect.loaded_dbapi.Error as exc:
        # The statement named in Core's handling is the one that failed (the others, before it, ran; after it, none).
        failed: list[Any] = next((s for s in sent if s[0].pgresult is not None and s[0].pgresult.status == _FATAL),
                                 sent[-1] if sent else [None, None, "", (), False])
        for other, *_ in sent:
            if other is not failed[0]:
                other.close()
        conn._handle_dbapi_exception(exc, failed[2], failed[3], failed[0], None)  # noqa: SLF001
        raise  # not reached
    return results


_FATAL = pq.ExecStatus.FATAL_ERROR


def _result(rendered: _Rendered, raw: Any) -> Any:
    return rendered.rows(raw) if rendered.fetches else raw


def run_sql(conn: sa.Connection, sql: str) -> None:
    """A statement without parameters on the DBAPI cursor, as a ``Fixed`` one runs: the ``BEGIN IMMEDIATE`` of the
    engine's ``begin`` hook, so inside the beginning of a transaction (none is begun for it)."""
    _execute(conn, sql, (), many=False, fetch=False)


def _execute(conn: sa.Connection, sql: str, args: Any, *, many: bool, fetch: bool) -> Any:
    """One statement on the connection's DBAPI cursor: its rows as the driver gives them, or its row count."""
    dbapi_conn = conn.connection
    cursor = None
    try:
        cursor = dbapi_conn.cursor()
        sql, args = _send(conn, cursor, sql, args, many)
        if conn.dispatch.after_cursor_execute:
            conn.dispatch.after_cursor_execute(conn, cursor, sql, args, None, many)
        result = cursor.fetchall() if fetch else cursor.rowcount
    except conn.dialect.loaded_dbapi.Error as exc:
        # Core's own handling of a driver's error: the engine's handle_error hook (the project's error, by
        # failures._translate), a dropped connection invalidated with its pool, the cursor closed. It raises.
        conn._handle_dbapi_exception(exc, sql, args, cursor, None)  # noqa: SLF001
        raise  # not reached
    cursor.close()
    return result


def _send(conn: sa.Connection, cursor: Any, sql: str, args: Any, many: bool) -> tuple[str, Any]:
    """Execute on ``cursor`` after the connection's ``before_cursor_execute`` hooks (which may rewrite it); the
    statement and arguments as sent."""
    sql, args = _before(conn, conn.dispatch, cursor, sql, args, many)
    if many:
        cursor.executemany(sql, args)
    else:
        cursor.execute(sql, args)
    return sql, args


def _before(conn: sa.Connection, dispatch: Any, cursor: Any, sql: str, args: Any, many: bool) -> tuple[str, Any]:
    if conn._has_events or conn.engine._has_events:  # noqa: SLF001 - as Core decides whether to fire them
        for hook in dispatch.before_cursor_execute:
            result = hook(conn, cursor, sql, args, None, many)
            if isinstance(result, tuple):  # a hook registered with retval=True may rewrite the statement
                sql, args = result
    return sql, args
