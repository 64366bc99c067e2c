"""Emergency (break-glass) grants as people read them: a case's grants on its page, and a unit's uses over a span
on its manager's report (who, which case reference, when granted, read or write, ended when; never the reasons)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from pathway.calendar import OSLO
from pathway.crypto import KeyRing
from pathway.store.casekeys import key_of
from pathway.store.tables import break_glass_t, case_t


@dataclass(frozen=True, slots=True)
class Grant:
    """One grant as the case page shows it, and whether it gives access now (``running``)."""

    username: str
    reason: str
    write_reason: str | None
    granted_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    ended_by: str | None
    running: bool

    @property
    def write(self) -> bool:
        return self.write_reason is not None


def case_grants(conn: sa.Connection, case_id: uuid.UUID, *, now: datetime, keys: KeyRing | None) -> list[Grant]:
    """Every emergency grant ever given for a case, oldest first, its reasons opened with the case's key."""
    rows = conn.execute(sa.select(break_glass_t).where(break_glass_t.c.case_id == case_id)
                        .order_by(break_glass_t.c.granted_at, break_glass_t.c.id)).all()
    sealer = key_of(conn, case_id, keys)
    return [Grant(username=r.username, reason=sealer.open(r.reason),
                  write_reason=None if r.write_reason is None else sealer.open(r.write_reason), granted_at=r.granted_at,
                  expires_at=r.expires_at, ended_at=r.ended_at, ended_by=r.ended_by,
                  running=r.ended_at is None and r.expires_at > now) for r in rows]


@dataclass(frozen=True, slots=True)
class Uses:
    """A unit's emergency grants given in ``start``..``end`` (days in Europe/Oslo, both included): each use (a dict:
    username, case_reference, granted_at, access "read" or "write", expires_at, ended_at, ended_by), newest first,
    and how many per period."""

    unit: str
    start: date
    end: date
    count: int
    per_period: dict[str, int]
    uses: list[dict[str, Any]]


def unit_uses(conn: sa.Connection, unit: str, *, start: date, end: date,
              period_of: Callable[[datetime], str]) -> Uses:
    """The emergency grants to the unit's cases in the span, counted by ``period_of`` (a month or a tertial)."""
    since = datetime.combine(start, time(), tzinfo=OSLO).astimezone(timezone.utc)
    until = datetime.combine(end + timedelta(days=1), time(), tzinfo=OSLO).astimezone(timezone.utc)
    rows = conn.execute(
        sa.select(break_glass_t.c.username, case_t.c.reference, break_glass_t.c.granted_at,
                  break_glass_t.c.write_reason.is_not(None).label("write"), break_glass_t.c.expires_at,
                  break_glass_t.c.ended_at, break_glass_t.c.ended_by)
        .join(case_t, case_t.c.id == break_glass_t.c.case_id)
        .where(case_t.c.unit == unit, break_glass_t.c.granted_at >= since, break_glass_t.c.granted_at < until)
        .order_by(break_glass_t.c.granted_at.desc(), break_glass_t.c.id)).all()
    uses = [{"username": r.username, "case_reference": r.reference, "granted_at": r.granted_at,
             "access": "write" if r.write else "read", "expires_at": r.expires_at, "ended_at": r.ended_at,
             "ended_by": r.ended_by} for r in rows]
    per_period = Counter(period_of(u["granted_at"]) for u in uses)
    return Uses(unit=unit, start=start, end=end, count=len(uses), per_period=dict(sorted(per_period.items())),
                uses=uses)
