"""Cases as the coordinators see them: the list of a unit's cases (filtered, paged by cursor), its counts, one case
whole, and the lookups that the access policy asks."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

import sqlalchemy as sa

from pathway.case import Case, Event
from pathway.errors import InvalidArgument
from pathway.store.tables import FAR_DUE_SQL, case_t
from pathway.store.uow import UnitOfWork
from pathway.views.access import emergency_grants
from pathway.views.deadlines import deadline_status, due_soon_clause, overdue_clause

Status = Literal["open", "closed", "all"]
Sort = Literal["next_due", "opened_at", "reference"]

_FAR = datetime(9999, 12, 31, tzinfo=timezone.utc)


class BadCursor(InvalidArgument):
    """A cursor that the case list did not hand out (it is client input: one forged by hand, or cut short)."""

    def __init__(self) -> None:
        super().__init__("cursor", "not a cursor this API handed out")


@dataclass(frozen=True, slots=True)
class CasePage:
    """One page of the list, and the cursor of the next (None on the last). Each case is a dict: reference, phase,
    unit, coordinator, opened_at, closed_at, paused, next_due_at, overdue, due_soon and version."""

    items: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """One case whole, as read in one snapshot: the aggregate, its timeline and its emergency grants."""

    case: Case
    events: list[Event]
    grants: list[Any]  # rows: username, reason, granted_at


def _encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode()


def _decode_cursor(cursor: str, sort: Sort) -> tuple[Any, uuid.UUID]:
    """(sort key, case id) of the previous page's last case; anything but the two strings handed out is refused
    here (``BadCursor``), never by an error from deeper down."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(values, list) or len(values) != 2 or not all(isinstance(v, str) for v in values):
            raise ValueError
        value, last_id = values
        bound: Any = value if sort == "reference" else datetime.fromisoformat(value)
        if isinstance(bound, datetime):
            if bound.tzinfo is None:
                raise ValueError
            bound = bound.astimezone(timezone.utc)
        return bound, uuid.UUID(last_id)
    except (ValueError, OverflowError):
        raise BadCursor() from None


def _of_unit(unit: str | None) -> sa.ColumnElement[bool]:
    """The cases of one unit (None: of no unit, for a user the policy lists nothing for)."""
    return case_t.c.unit == unit if unit is not None else sa.false()


def case_list(
    conn: sa.Connection, *, unit: str | None, now: datetime, status: Status = "open",
    phase: str | None = None, coordinator: str | None = None, overdue: bool | None = None,
    due_soon: bool | None = None, q: str | None = None, sort: Sort = "next_due", cursor: str | None = None,
    limit: int | None = 50,
) -> CasePage:
    """A unit's cases, a page of at most ``limit`` (None: all of them) after ``cursor``, by ``sort`` then id.
    ``q`` is the start of a reference; ``overdue``/``due_soon`` keep the cases that are (True) or are not (False)."""
    # The same expression as the index ix_case_open_unit_next_due, with the literal inline, so it is used.
    far = sa.literal_column(FAR_DUE_SQL[conn.dialect.name], type_=case_t.c.next_due_at.type)
    key = {"next_due": sa.func.coalesce(case_t.c.next_due_at, far), "opened_at": case_t.c.opened_at,
           "reference": case_t.c.reference}[sort]
    query = sa.select(case_t.c.reference, case_t.c.phase, case_t.c.unit, case_t.c.coordinator, case_t.c.opened_at,
                      case_t.c.closed_at, case_t.c.paused_since, case_t.c.next_due_at, case_t.c.version,
                      case_t.c.id).where(_of_unit(unit))
    if status != "all":
        query = query.where(case_t.c.closed_at.is_(None) if status == "open" else case_t.c.closed_at.is_not(None))
    if phase:
        query = query.where(case_t.c.phase == phase)
    if coordinator:
        query = query.where(case_t.c.coordinator == coordinator)
    if overdue is not None:
        query = query.where(overdue_clause(now) if overdue else sa.not_(overdue_clause(now)))
    if due_soon is not None:
        query = query.where(due_soon_clause(now) if due_soon else sa.not_(due_soon_clause(now)))
    if q:
        query = query.where(case_t.c.reference.startswith(q.upper(), autoescape=True))
    if cursor:
        bound, last_id = _decode_cursor(cursor, sort)
        query = query.where(sa.tuple_(key, case_t.c.id) > sa.tuple_(sa.literal(bound, key.type), last_id))
    query = query.order_by(key, case_t.c.id)
    fetched = conn.execute(query if limit is None else query.limit(limit + 1)).all()
    rows = fetched if limit is None else fetched[:limit]
    nxt = None
    if len(fetched) > len(rows):
        last = rows[-1]
        value = {"next_due": last.next_due_at or _FAR, "opened_at": last.opened_at, "reference": last.reference}[sort]
        nxt = _encode_cursor([value.isoformat() if isinstance(value, datetime) else value, str(last.id)])
    return CasePage([_summary(r, now) for r in rows], nxt)


def _summary(r: Any, now: datetime) -> dict[str, Any]:
    deadline = deadline_status(r.next_due_at, now, closed=r.closed_at is not None)
    return {"reference": r.reference, "phase": r.phase, "unit": r.unit, "coordinator": r.coordinator,
            "opened_at": r.opened_at, "closed_at": r.closed_at, "paused": r.paused_since is not None,
            "next_due_at": r.next_due_at, "overdue": deadline == "overdue", "due_soon": deadline == "due_soon",
            "version": r.version}


def case_counts(conn: sa.Connection, *, unit: str | None, now: datetime) -> dict[str, int]:
    """How many of a unit's cases are open, and of those overdue, due soon and paused (the dashboard's counts)."""

    def n(clause: sa.ColumnElement[bool]) -> Any:
        return sa.func.count().filter(clause)

    row = conn.execute(sa.select(sa.func.count().label("open"), n(overdue_clause(now)).label("overdue"),
                                 n(due_soon_clause(now)).label("due_soon"),
                                 n(case_t.c.paused_since.is_not(None)).label("paused"))
                       .where(_of_unit(unit), case_t.c.closed_at.is_(None))).one()
    return dict(row._mapping)


def case_record(uow: UnitOfWork, reference: str) -> CaseRecord:
    """One case whole, in the caller's unit of work (enter it with ``snapshot`` or ``read_only``, so that it is
    never shown half before, half after a write)."""
    case = uow.cases.get(reference)
    return CaseRecord(case, uow.cases.events(case.id), emergency_grants(uow.conn, case.id))


def of_unit(conn: sa.Connection, references: list[str], unit: str | None) -> list[str]:
    """Those of ``references`` that are cases of ``unit``, in the order given."""
    if not references:
        return []
    mine = set(conn.execute(sa.select(case_t.c.reference).where(
        case_t.c.reference.in_(references), _of_unit(unit))).scalars())
    return [ref for ref in references if ref in mine]
