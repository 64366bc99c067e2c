"""Rate limits shared by every process: attempts counted per key (a client address, an account name) in a fixed
window, in the database, one atomic statement per attempt; an attempt that turned out well can be given back."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pathway.store.tables import rate_limit_t

MAX_KEY = 200  # the column's length


@dataclass(frozen=True)
class Limit:
    """At most ``attempts`` in a window of ``window``."""

    attempts: int
    window: timedelta


@dataclass(frozen=True)
class Hit:
    """One attempt, counted: how many there have been in its window so far (this one included), and, when that
    is over the limit, how long until the window ends."""

    key: str
    count: int
    window_start: datetime
    retry_after: timedelta | None

    @property
    def refused(self) -> bool:
        return self.retry_after is not None

    @property
    def retry_after_seconds(self) -> int:
        return max(1, math.ceil(self.retry_after.total_seconds())) if self.retry_after is not None else 0


def hit(conn: sa.Connection, key: str, *, limit: Limit, now: datetime) -> Hit:
    """Count one attempt under ``key``. One INSERT ... ON CONFLICT DO UPDATE on both databases, so that attempts
    in parallel (other workers, other servers) are all counted; a window older than ``limit.window`` starts over.
    Refused attempts count too, but never move the window: a flood is refused until the window ends, no longer."""
    if not key or len(key) > MAX_KEY:
        raise ValueError(f"a rate limit key has 1 to {MAX_KEY} characters")
    at = sa.literal(now, rate_limit_t.c.window_start.type)
    stale = rate_limit_t.c.window_start <= now - limit.window
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(rate_limit_t).values(key=key, window_start=now, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[rate_limit_t.c.key],
        set_={"window_start": sa.case((stale, at), else_=rate_limit_t.c.window_start),
              "count": sa.case((stale, 1), else_=rate_limit_t.c.count + 1)},
    ).returning(rate_limit_t.c.count, rate_limit_t.c.window_start)
    count, started = conn.execute(stmt).one()
    if count <= limit.attempts:
        return Hit(key, count, started, None)
    return Hit(key, count, started, max(started + limit.window - now, timedelta(seconds=1)))


def give_back(conn: sa.Connection, hit: Hit) -> None:
    """Uncount an attempt that turned out well (so that a limit counts failures only): in the same window only, and
    in one statement, like the count."""
    conn.execute(sa.update(rate_limit_t).where(rate_limit_t.c.key == hit.key, rate_limit_t.c.window_start ==
                                               hit.window_start, rate_limit_t.c.count > 0)
                 .values(count=rate_limit_t.c.count - 1))


def purge(conn: sa.Connection, *, before: datetime) -> int:
    """Forget the windows that started before ``before`` (they would start over anyway). Rows another transaction
    holds are skipped (PostgreSQL's SKIP LOCKED), so that a purge never waits for, nor deadlocks with, a count."""
    old = (sa.select(rate_limit_t.c.key).where(rate_limit_t.c.window_start < before)
           .with_for_update(skip_locked=True).limit(1000))
    return conn.execute(sa.delete(rate_limit_t).where(rate_limit_t.c.key.in_(old))).rowcount
