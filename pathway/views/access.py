"""The access log as its reviewers read it, and a case's emergency (break-glass) grants as the case page shows them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from pathway.calendar import OSLO
from pathway.case.events import Sealer
from pathway.crypto import KeyRing, is_sealed
from pathway.errors import InvalidArgument
from pathway.store.casekeys import keys_of
from pathway.store.tables import access_t, break_glass_t, case_t

EARLIEST_DAY, LATEST_DAY = date(1970, 1, 1), date(2099, 12, 31)


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which access-log rows to read: of a case, of a user, from a day, to a day (Oslo calendar days, both
    included). A user's rows are what they did and what administrators did to their account."""

    case_reference: str | None = None
    username: str | None = None
    start: date | None = None
    end: date | None = None

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            day = getattr(self, name)
            if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
                raise InvalidArgument(name, "must lie between {earliest} and {latest}", earliest=EARLIEST_DAY.year, latest=LATEST_DAY.year)
        if self.start is not None and self.end is not None and self.start > self.end:
            raise InvalidArgument("end", "must not come before start")

    @property
    def empty(self) -> bool:
        return not (self.case_reference or self.username or self.start or self.end)

    def described(self) -> str | None:
        """The filter as the access log's own row of this reading records it (the case has its own column)."""
        parts = [f"{k}={v}" for k, v in (("user", self.username), ("start", self.start), ("end", self.end)) if v]
        return " ".join(parts) or None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=OSLO)


def access_entries(conn: sa.Connection, *, case_reference: str | None = None, username: str | None = None,
                   limit: int, keys: KeyRing | None, where: LogFilter | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` access-log rows that match a filter (``where``, or a case and a user); a reason sealed
    under its case's key (an emergency access's) opened with ``keys``."""
    where = where or LogFilter(case_reference, username)
    query = sa.select(access_t).order_by(access_t.c.at.desc()).limit(limit)
    if where.case_reference:
        query = query.where(access_t.c.case_reference == where.case_reference)
    if where.username:
        # The action guards the reason: only an administrator's change to an account writes user.* rows, so a
        # break-glass reason that happens to read "user=..." does not match.
        named = target_reason(where.username)
        query = query.where(sa.or_(access_t.c.username == where.username, sa.and_(
            access_t.c.action.startswith("user.", autoescape=True),
            sa.or_(access_t.c.reason == named, access_t.c.reason.startswith(named + " ", autoescape=True)))))
    if where.start:
        query = query.where(access_t.c.at >= _midnight(where.start))
    if where.end:
        query = query.where(access_t.c.at < _midnight(where.end + timedelta(days=1)))
    entries = [dict(r) for r in conn.execute(query).mappings()]
    sealed = {e["case_reference"] for e in entries if is_sealed(e["reason"])}
    if sealed:
        ids = dict(conn.execute(sa.select(case_t.c.reference, case_t.c.id).where(case_t.c.reference.in_(sealed))).all())
        sealers = keys_of(conn, ids.values(), keys)
        for e in entries:
            if is_sealed(e["reason"]) and e["case_reference"] in ids:
                e["reason"] = sealers[ids[e["case_reference"]]].open(e["reason"])
    return entries


def target_reason(username: str, *changes: tuple[str, object]) -> str:
    """How an administrator's change to an account names its user (and what it now is) in the access log's reason,
    never in a column of case data: ``user=kari role=manager unit=voss``."""
    return " ".join([f"user={username}", *(f"{k}={v}" for k, v in changes if v is not None)])


def emergency_grants(conn: sa.Connection, case_id: uuid.UUID, sealer: Sealer) -> list[Any]:
    """Every emergency grant ever given for a case (rows: username, reason, write_reason (None: read-only),
    granted_at), shown on the case; its reasons opened with the case's key (``sealer``)."""
    rows = conn.execute(sa.select(break_glass_t.c.username, break_glass_t.c.reason, break_glass_t.c.write_reason,
                                  break_glass_t.c.granted_at).where(break_glass_t.c.case_id == case_id)).all()
    return [SimpleNamespace(username=r.username, reason=sealer.open(r.reason), granted_at=r.granted_at,
                            write_reason=None if r.write_reason is None else sealer.open(r.write_reason))
            for r in rows]
