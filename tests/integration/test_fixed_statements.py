"""The hot path's statements on the DBAPI cursor (``pathway.store.fixed``) store and read exactly what Core does:
the same driver values for every column type the case tables use (SQLite compares times and ids as the text Core
wrote, so one character off would hide a row from an index range), the same values read back, the project's errors,
and the connection's statement hooks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg

from pathway.case.values import iso
from pathway.errors import ConstraintViolated
from pathway.store.engine import create_engine
from pathway.store.fixed import Fixed, _Rendered, any_of, together
from pathway.store.tables import UTCDateTime
from tests.suite.pgtrace import round_trips

OSLO_WINTER = timezone(timedelta(hours=1))
TIMES = [
    datetime(2027, 1, 1, 0, 30, tzinfo=OSLO_WINTER),  # the day before in UTC
    datetime(2028, 2, 29, 12, 0, 0, 1, tzinfo=timezone.utc),
    datetime(2027, 3, 28, 1, 30, tzinfo=timezone(timedelta(hours=1))),  # a DST change
    datetime(2027, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
    datetime(999, 1, 1, tzinfo=timezone.utc),  # a year of three digits is still written with four
]
JSONS: list[Any] = [{}, [], {"b": [1, 2.5, None], "a": "Tromsø «sitat»"}, ["x"], None, "tekst", 0]

metadata = sa.MetaData()
probe_t = sa.Table(
    "fixed_probe", metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("at", UTCDateTime(timezone=True)),
    sa.Column("data", sa.JSON),
    sa.Column("flag", sa.Boolean),
    sa.Column("blob", sa.LargeBinary),
    sa.Column("n", sa.Integer),
    sa.Column("name", sa.String(40), unique=True),
)
_INSERT = Fixed(sa.insert(probe_t))
_BY_ID = Fixed(sa.select(probe_t).where(probe_t.c.id == sa.bindparam("id")))


def _core_bind(type_: Any, dialect: sa.Dialect, value: Any) -> Any:
    process = type_._cached_bind_processor(dialect)  # what Core gives the driver
    return value if process is None else process(value)


def _driver_value(value: Any) -> Any:
    return ("Json", value.obj) if type(value).__name__ == "Json" else value


@pytest.mark.parametrize("dialect", [sqlite.dialect(), psycopg.dialect()], ids=["sqlite", "postgresql"])
def test_every_column_type_goes_to_the_driver_as_core_sends_it(dialect: sa.Dialect) -> None:
    rendered = _Rendered(sa.insert(probe_t), dialect)
    rows = [
        {"id": uuid.uuid4(), "at": at, "data": data, "flag": flag, "blob": b"\x00\xff", "n": 7, "name": "å"}
        for at, data, flag in zip(TIMES + [None, TIMES[0]], JSONS, [True, False, None, True, False, True, None],
                                  strict=False)
    ]
    for row in rows:
        ours = rendered.args(row)
        core = [_core_bind(probe_t.c[name].type, dialect, row[name]) for name in rendered.names]
        assert [_driver_value(v) for v in ours] == [_driver_value(v) for v in core], row


def test_sqlite_times_are_the_text_core_writes() -> None:
    rendered = _Rendered(sa.insert(probe_t), sqlite.dialect())
    at = rendered.names.index("at")
    values = [rendered.args({"id": uuid.UUID(int=1), "at": t, "data": None, "flag": None, "blob": None, "n": None,
                             "name": None})[at] for t in TIMES]
    assert values == ["2026-12-31 23:30:00.000000", "2028-02-29 12:00:00.000001", "2027-03-28 00:30:00.000000",
                      "2027-12-31 23:59:59.999999", "0999-01-01 00:00:00.000000"]


def test_a_naive_time_is_refused_not_guessed() -> None:
    rendered = _Rendered(sa.insert(probe_t), sqlite.dialect())
    with pytest.raises(ValueError, match="naive"):
        rendered.args({"id": uuid.UUID(int=1), "at": datetime(2027, 1, 1), "data": None, "flag": None, "blob": None,
                       "n": None, "name": None})


def test_the_two_local_times_of_the_autumn_change_are_written_as_the_instants_they_are() -> None:
    """02:30 on the night of the autumn change happens twice in Oslo; the two compare equal in Python (they differ
    only in ``fold``), so what is remembered of a time is keyed by its UTC, never by the time as given."""
    oslo = ZoneInfo("Europe/Oslo")
    first, second = datetime(2027, 10, 31, 2, 30, tzinfo=oslo), datetime(2027, 10, 31, 2, 30, fold=1, tzinfo=oslo)
    assert first == second  # and hash alike
    rendered = _Rendered(sa.insert(probe_t), sqlite.dialect())
    at = rendered.names.index("at")
    written = [rendered.args({"id": uuid.UUID(int=1), "at": t, "data": None, "flag": None, "blob": None, "n": None,
                              "name": None})[at] for t in (first, second, first)]
    assert written == ["2027-10-31 00:30:00.000000", "2027-10-31 01:30:00.000000", "2027-10-31 00:30:00.000000"]
    assert [iso(first), iso(second)] == ["2027-10-31T00:30:00+00:00", "2027-10-31T01:30:00+00:00"]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None) -> Iterator[sa.Engine]:
    if request.param == "postgresql" and postgres_url is None:
        pytest.skip("PostgreSQL not reachable (required and run under CI)")
    engine = create_engine(postgres_url if request.param == "postgresql" else f"sqlite:///{tmp_path / 'f.db'}")
    metadata.create_all(engine)
    yield engine
    metadata.drop_all(engine)
    engine.dispose()


def _rows(i: int) -> list[dict[str, Any]]:
    return [{"id": uuid.uuid4(), "at": at, "data": data, "flag": flag, "blob": bytes([i, k]), "n": k,
             "name": f"{i}-{k}"}
            for k, (at, data, flag) in enumerate(zip(TIMES, JSONS, [True, False, None, True, False], strict=False))]


def test_rows_written_by_either_path_are_stored_alike_and_read_alike(engine: sa.Engine) -> None:
    by_core, by_fixed = _rows(1), _rows(2)
    for row in by_fixed:  # the same values, but for the key and the unique name
        row.update({k: v for k, v in by_core[row["n"]].items() if k not in ("id", "name", "blob")})
    with engine.begin() as conn:
        conn.execute(sa.insert(probe_t), by_core)
        assert _INSERT.run(conn, by_fixed) == len(by_fixed)
    stored = sa.select(*[sa.cast(c, sa.String).label(c.name) if c.name in ("at", "id", "flag", "data") else c
                         for c in probe_t.c]).order_by(probe_t.c.name)
    with engine.connect() as conn:
        raw = {r.name: r for r in conn.execute(stored)}
        for core_row, fixed_row in zip(by_core, by_fixed, strict=True):
            a, b = raw[core_row["name"]], raw[fixed_row["name"]]
            assert (a.at, a.data, a.flag) == (b.at, b.data, b.flag), "the same text in the database"
        for row in by_core + by_fixed:
            (read,) = _BY_ID.rows(conn, {"id": row["id"]})
            core = conn.execute(sa.select(probe_t).where(probe_t.c.id == row["id"])).one()
            assert read == tuple(core), "read as Core reads it"
            assert dict(zip(probe_t.c.keys(), read, strict=True)) == row
            at = read[1]
            assert at is None or at.tzinfo == timezone.utc, "times come back in UTC"


def test_a_broken_constraint_is_the_projects_error_and_the_hooks_see_the_statement(engine: sa.Engine) -> None:
    seen: list[tuple[str, str]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append(("before", statement.split()[0]))

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append(("after", statement.split()[0]))

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    try:
        row = _rows(3)[0]
        with engine.begin() as conn:
            _INSERT.run(conn, row)
        with pytest.raises(ConstraintViolated), engine.begin() as conn:
            _INSERT.run(conn, {**row, "id": uuid.uuid4()})  # the same unique name
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
        sa.event.remove(engine, "after_cursor_execute", after)
    assert [s for s in seen if s[1] == "INSERT"] == [("before", "INSERT"), ("after", "INSERT"), ("before", "INSERT")]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(probe_t)).scalar() == 1, "nothing else written"


def test_a_time_repeated_in_the_rows_is_read_once_and_shared_but_json_never_is(engine: sa.Engine) -> None:
    at = TIMES[1]
    rows = [{"id": uuid.uuid4(), "at": at, "data": {"scope": ["health"]}, "flag": True, "blob": None, "n": n,
             "name": f"shared-{n}"} for n in range(3)]
    both = Fixed(sa.select(probe_t.c.at, probe_t.c.data).order_by(probe_t.c.n))
    with engine.begin() as conn:
        _INSERT.run(conn, rows)
        read = both.rows(conn, {})
    assert [r[0] for r in read] == [at] * 3 and read[0][0] is read[1][0] is read[2][0], "one object for one time"
    assert [r[1] for r in read] == [{"scope": ["health"]}] * 3
    read[0][1]["scope"].append("police")  # a caller may change what it read: the other rows keep theirs
    assert read[1][1] == {"scope": ["health"]}


def test_a_statement_outside_a_transaction_begins_one_as_core_would(engine: sa.Engine) -> None:
    """Never beside the connection's transaction: a write without one begins it, and a rollback takes it back."""
    row = _rows(4)[0]
    with engine.connect() as conn:
        assert not conn.in_transaction()
        _INSERT.run(conn, row)
        assert conn.in_transaction()
        conn.rollback()
    with engine.connect() as conn:
        assert _BY_ID.rows(conn, {"id": row["id"]}) == [], "rolled back with its transaction"


_SET_N = Fixed(sa.update(probe_t).where(probe_t.c.name == sa.bindparam("b_name")).values(n=sa.bindparam("b_n")))
_NS = Fixed(sa.select(probe_t.c.name, probe_t.c.n).order_by(probe_t.c.name))


def test_statements_sent_together_give_what_one_after_another_gives_each_seeing_the_ones_before(
        engine: sa.Engine, tmp_path: Path) -> None:
    first, more = _rows(5)[0], _rows(6)[:3]
    with engine.begin() as conn:
        postgresql = engine.dialect.name == "postgresql"
        pgconn = conn.connection.driver_connection.pgconn if postgresql else None  # type: ignore[union-attr]
        with round_trips(pgconn, tmp_path / "trace") if postgresql else nullcontext([]) as trips:
            got = together(conn, [
                (_INSERT, first),  # one row
                (_INSERT, more),  # several
                (_SET_N, [{"b_name": r["name"], "b_n": 40 + i} for i, r in enumerate(more)]),  # the rows just inserted
                (_BY_ID, {"id": first["id"]}),  # a SELECT among them
                (_NS, {}),
            ])
    if postgresql:
        assert trips == [2], "the transaction's BEGIN, then all five in one round trip"
    (read,) = got[3]
    assert got[:3] == [1, 3, 3], "each statement's row count"
    assert dict(zip(probe_t.c.keys(), read, strict=True)) == first
    assert got[4] == sorted([(first["name"], first["n"]), *[(r["name"], 40 + i) for i, r in enumerate(more)]])


def test_an_error_among_statements_sent_together_is_the_projects_error_and_the_transaction_writes_nothing(
        engine: sa.Engine) -> None:
    seen: list[str] = []

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split()[0])

    row, other = _rows(7)[:2]
    sa.event.listen(engine, "after_cursor_execute", after)
    try:
        with pytest.raises(ConstraintViolated), engine.begin() as conn:
            together(conn, [(_INSERT, row), (_INSERT, {**row, "id": uuid.uuid4()}), (_INSERT, other)])
    finally:
        sa.event.remove(engine, "after_cursor_execute", after)
    # Reported run: on SQLite the insert before the failed one (each runs alone); on PostgreSQL none, since the
    # pipeline's results come back together and the transaction failed. Never one after the failed one.
    assert [s for s in seen if s != "BEGIN"] == (["INSERT"] if engine.dialect.name == "sqlite" else [])
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(probe_t)).scalar() == 0, "nothing written"
        assert conn.execute(sa.select(sa.func.count())).scalar() == 1, "and the connection works on"


def test_a_column_type_without_a_codec_is_refused_when_rendered_not_passed_through() -> None:
    money = sa.Table("fixed_money", sa.MetaData(), sa.Column("amount", sa.Numeric(10, 2)))
    for dialect in (sqlite.dialect(), psycopg.dialect()):
        with pytest.raises(TypeError, match="no codec"):
            _Rendered(sa.select(money.c.amount), dialect)


_NAMES_BY_IDS = Fixed(sa.select(probe_t.c.name).where(any_of(probe_t.c.id)).order_by(probe_t.c.name))


def test_any_of_takes_the_ids_as_one_parameter_however_many_they_are(engine: sa.Engine) -> None:
    rows = [{**row, "name": f"{i}-{row['n']}"} for i in range(200) for row in _rows(i)[:5]]  # 1,000 rows
    with engine.begin() as conn:
        _INSERT.run(conn, rows)
        sent: list[tuple[str, Any]] = []  # (statement, parameters)
        sa.event.listen(conn, "before_cursor_execute", lambda *args: sent.append(args[2:4]))
        for ids in ([], [rows[7]["id"]], [r["id"] for r in rows[::3]], [uuid.uuid4()]):
            got = _NAMES_BY_IDS.rows(conn, {"ids": ids})
            assert got == sorted((r["name"],) for r in rows if r["id"] in set(ids))
    assert len(sent) == 4 and len({sql for sql, _ in sent}) == 1, "one statement for any number of ids"
    assert all(len(args) == 1 for _, args in sent), "the ids are one parameter"
