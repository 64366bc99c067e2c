"""The column types every table shares: timezone-aware UTC times, JSON, partial indexes on both databases."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def to_utc(value: datetime) -> datetime:
    """A time as it is stored: in UTC; a naive one is refused, never guessed."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """A time as it is read back: in UTC, whether the database kept it without an offset (SQLite) or with one."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend; naive values are refused, never guessed (the hot path's statements
    convert alike, by ``to_utc`` and ``as_utc``: ``pathway.store.fixed``)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = to_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def ts(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


def json(**kw: Any) -> Any:
    return Field(sa_type=sa.JSON, **kw)


def partial_index(name: str, *columns: str, where: str) -> sa.Index:
    """An index over the rows that match ``where``, the same on SQLite and PostgreSQL."""
    return sa.Index(name, *columns, sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a table model (SQLModel sets ``__table__`` without declaring it to type checkers)."""
    table = sa.inspect(model).local_table
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table
