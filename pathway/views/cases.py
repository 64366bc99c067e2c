"""Cases as the coordinators see them: the list of a unit's cases (filtered, paged by cursor), its counts, one case
whole, and the lookups that the access policy asks."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa

from pathway.case import Case, Event
from pathway.machine import OPEN_STEP_STATES
from pathway.crypto import KeyRing, is_sealed
from pathway.store.casekeys import key_of, keys_of
from pathway.store.fixed import Call, Fixed, any_of, together
from pathway.store.tables import FAR_DUE_SQL, case_t, handover_t, step_t
from pathway.store.uow import UnitOfWork
from pathway.views.access import emergency_grants
from pathway.views.children import ChildPathway, child_pathways, family_reference
from pathway.views.cursor import Kind, decode_cursor, encode_cursor
from pathway.views.deadlines import deadline_status, due_before_clause, due_soon_clause, overdue_clause

Status = Literal["open", "closed", "all"]
Sort = Literal["next_due", "opened_at", "reference", "phase"]

_FAR = datetime(9999, 12, 31, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class CasePage:
    """One page of the list, and the cursor of the next (None on the last). Each case is a dict: reference, phase,
    unit, coordinator, opened_at, closed_at, paused, next_due_at, overdue, due_soon, version, urgent_step (the open
    step with the earliest deadline: code, name, adhoc, due_at; None without one), pathway (its pathway's id) and
    handover_alerts (code,
    agency, status "declined" or "unanswered", due_at). ``total`` is how many cases match the filters, ``before``
    how many of them come before this page (both None unless counted)."""

    items: list[dict[str, Any]]
    next_cursor: str | None
    total: int | None = None
    before: int | None = None
    also: list[Any] = field(default_factory=list)  # the results of case_list's ``also``


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """One case whole, as read in one snapshot: the aggregate, its timeline and its emergency grants."""

    case: Case
    events: list[Event]
    grants: list[Any]  # rows: username, reason, granted_at
    part_of: str | None = None  # a child's pathway: the adult's case reference
    children: list[ChildPathway] = field(default_factory=list)  # an adult's case: its children's pathways


# A checkpoint's name in the reader's language: (pathway id, definition version, code) -> name, None if unknown.
StepNames = Callable[[str, int, str], "str | None"]
def _of_unit(unit: str | None) -> sa.ColumnElement[bool]:
    """The cases of one unit (None: of no unit, for a user the policy lists nothing for)."""
    return case_t.c.unit == unit if unit is not None else sa.false()


def case_list(
    conn: sa.Connection, *, unit: str | None, now: datetime, status: Status = "open",
    phase: str | None = None, coordinator: str | None = None, overdue: bool | None = None,
    due_soon: bool | None = None, due_before: datetime | None = None, q: str | None = None,
    sort: Sort = "next_due", descending: bool = False, phase_order: Sequence[str] = (), cursor: str | None = None,
    limit: int | None = 50, count: bool = False, names: StepNames | None = None, pathway: str | None = None,
    key_ring: KeyRing | None = None, also: Sequence[Call] = (),
) -> CasePage:
    """A unit's cases, a page of at most ``limit`` (None: all of them) after ``cursor``, by ``sort`` then id.
    ``q`` is the start of a reference; ``overdue``/``due_soon`` keep the cases that are (True) or are not (False);
    ``due_before`` those whose next deadline is before it (passed ones too). ``sort="phase"`` orders by
    ``phase_order`` (phases not in it last), then by next deadline. ``count`` also counts the matching cases and
    those before the page; ``names`` names the urgent steps (otherwise the step's code, or an ad-hoc step's title);
    ``pathway`` keeps the cases of that pathway (an adult's, a child's) only. ``key_ring`` opens an ad-hoc step's
    title, sealed under its case's key. ``also``: more statements of the transaction, sent with the page's last
    (``fixed.together``: one round trip on PostgreSQL); their results are the page's ``also``."""
    # The same expression as the index ix_case_open_unit_next_due, with the literal inline, so it is used.
    far = sa.literal_column(FAR_DUE_SQL[conn.dialect.name], type_=case_t.c.next_due_at.type)
    next_due = sa.func.coalesce(case_t.c.next_due_at, far)
    ranks = {p: i for i, p in enumerate(phase_order)}
    keys: list[tuple[Any, Kind]]
    if sort == "phase":
        by_phase: tuple[Any, Kind] = ((sa.case(ranks, value=case_t.c.phase, else_=len(ranks)), "rank") if ranks
                                      else (case_t.c.phase, "text"))
        keys = [by_phase, (next_due, "time")]
    elif sort == "reference":
        keys = [(case_t.c.reference, "text")]
    else:
        keys = [(case_t.c.opened_at if sort == "opened_at" else next_due, "time")]
    query = sa.select(case_t.c.reference, case_t.c.phase, case_t.c.unit, case_t.c.coordinator, case_t.c.opened_at,
                      case_t.c.closed_at, case_t.c.paused_since, case_t.c.next_due_at, case_t.c.version,
                      case_t.c.pathway_id, case_t.c.definition_version, case_t.c.id).where(_of_unit(unit))
    if status != "all":
        query = query.where(case_t.c.closed_at.is_(None) if status == "open" else case_t.c.closed_at.is_not(None))
    if pathway:
        query = query.where(case_t.c.pathway_id == pathway)
    if phase:
        query = query.where(case_t.c.phase == phase)
    if coordinator:
        query = query.where(case_t.c.coordinator == coordinator)
    if overdue is not None:
        query = query.where(overdue_clause(now) if overdue else sa.not_(overdue_clause(now)))
    if due_soon is not None:
        query = query.where(due_soon_clause(now) if due_soon else sa.not_(due_soon_clause(now)))
    if due_before is not None:
        query = query.where(due_before_clause(due_before))
    if q:
        query = query.where(case_t.c.reference.startswith(q.upper(), autoescape=True))
    total = before = None
    if count:
        total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
        before = 0
    if cursor:
        bounds, last_id = decode_cursor(cursor, [kind for _, kind in keys])
        mine = sa.tuple_(*(k for k, _ in keys), case_t.c.id)
        theirs = sa.tuple_(*(sa.literal(b, k.type) for (k, _), b in zip(keys, bounds, strict=True)), last_id)
        query = query.where(mine < theirs if descending else mine > theirs)
        if count:
            after = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
            before = (total or 0) - after
    order = [k for k, _ in keys] + [case_t.c.id]
    query = query.order_by(*(o.desc() if descending else o for o in order))
    fetched = conn.execute(query if limit is None else query.limit(limit + 1)).all()
    rows = fetched if limit is None else fetched[:limit]
    nxt = None
    if len(fetched) > len(rows):
        last = rows[-1]
        value: dict[str, list[Any]] = {
            "next_due": [last.next_due_at or _FAR], "opened_at": [last.opened_at], "reference": [last.reference],
            "phase": [ranks.get(last.phase, len(ranks)) if ranks else last.phase, last.next_due_at or _FAR]}
        nxt = encode_cursor([v.isoformat() if isinstance(v, datetime) else str(v) for v in value[sort]]
                            + [str(last.id)])
    open_ids = [r.id for r in rows if r.closed_at is None]
    urgent, alerts, given = _urgent_and_alerts(conn, open_ids, now, also=also)
    titled = [i for i, s in urgent.items() if s.adhoc and is_sealed(s.title)]
    if titled:
        sealers = keys_of(conn, titled, key_ring)
        urgent |= {i: urgent[i]._replace(title=sealers[i].open(str(urgent[i].title))) for i in titled}
    items = []
    for r in rows:
        step = urgent.get(r.id)
        items.append({**_summary(r, now),
                      "urgent_step": None if step is None else {
                          "code": step.code, "adhoc": step.adhoc, "due_at": step.due_at,
                          "name": _step_name(r, step, names)},
                      "handover_alerts": alerts.get(r.id, [])})
    return CasePage(items, nxt, total, before, given)


def _step_name(case: Any, step: Any, names: StepNames | None) -> str:
    if step.adhoc:
        return str(step.title or step.code)
    name = names(case.pathway_id, case.definition_version, step.code) if names is not None else None
    return name or str(step.code)


class UrgentStep(NamedTuple):
    """A case's most urgent open step: a row of ``_URGENT_STEPS``."""

    case_id: uuid.UUID
    code: str
    adhoc: bool
    title: str | None
    due_at: datetime
    n: int


class _Alert(NamedTuple):
    case_id: uuid.UUID
    code: str
    agency: str
    status: str
    due_at: datetime | None


def handover_alerts(conn: sa.Connection, case_ids: list[uuid.UUID], now: datetime) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The handovers of ``case_ids`` that need the coordinator, in one query: declined (the checkpoint's latest task,
    while its step is still open: asking again or skipping it ends the alert) and unanswered (requested, and its
    deadline passed). Lists of code, agency, status ("declined" or "unanswered") and due_at, by case id."""
    return _urgent_and_alerts(conn, case_ids, now, urgent=False)[1]


def _urgent_and_alerts(conn: sa.Connection, case_ids: list[uuid.UUID], now: datetime | None, *, urgent: bool = True,
                       also: Sequence[Call] = ()) -> tuple[dict[uuid.UUID, UrgentStep],
                                                           dict[uuid.UUID, list[dict[str, Any]]], list[Any]]:
    """Each case's most urgent open step (the earliest deadline; the first made among equal ones; unless not
    ``urgent``) and, with ``now``, its ``handover_alerts``, asked together with ``also`` (one round trip on
    PostgreSQL): a page of the list needs both. Also the results of ``also``."""
    calls = list(also)
    if case_ids:
        calls += ([(_URGENT_STEPS, {"ids": case_ids})] if urgent else []) + (
            [(_HANDOVER_ALERTS, {"ids": case_ids, "now": now})] if now is not None else [])
    results = together(conn, calls) if calls else []
    given, results = results[:len(also)], results[len(also):]
    steps = {r[0]: UrgentStep(*r) for r in results.pop(0)} if case_ids and urgent else {}
    found: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for r in map(_Alert._make, results[0] if results else ()):
        found.setdefault(r.case_id, []).append({
            "code": r.code, "agency": r.agency, "due_at": r.due_at,
            "status": "declined" if r.status == "declined" else "unanswered"})
    return steps, found, given


# Both read for every page of every case list: rendered once, run on the DBAPI cursor, the page's case ids as one
# parameter. The open states are constants of the machine, written into the SQL.
_OPEN: list[sa.ColumnElement[Any]] = [sa.literal_column(f"'{state}'") for state in sorted(OPEN_STEP_STATES)]
_RANKED = (sa.select(step_t.c.case_id, step_t.c.code, step_t.c.adhoc, step_t.c.title, step_t.c.due_at,
                     sa.func.row_number().over(partition_by=step_t.c.case_id,
                                               order_by=(step_t.c.due_at, step_t.c.position)).label("n"))
           .where(any_of(step_t.c.case_id), step_t.c.state.in_(_OPEN), step_t.c.due_at.is_not(None))
           .subquery())
_URGENT_STEPS = Fixed(sa.select(_RANKED).where(_RANKED.c.n == 1))


def _handover_alerts_query() -> sa.Select[Any]:
    later = handover_t.alias("later")
    step = step_t.alias("open_step")
    newer = sa.exists().where(later.c.case_id == handover_t.c.case_id, later.c.code == handover_t.c.code,
                              later.c.position > handover_t.c.position)
    still_open = sa.exists().where(step.c.case_id == handover_t.c.case_id, step.c.code == handover_t.c.code,
                                   step.c.state.in_(_OPEN))
    declined = sa.and_(handover_t.c.status == "declined", sa.not_(newer), still_open)
    unanswered = sa.and_(handover_t.c.status == "requested", handover_t.c.due_at.is_not(None),
                         handover_t.c.due_at < sa.bindparam("now", type_=handover_t.c.due_at.type))
    return (sa.select(handover_t.c.case_id, handover_t.c.code, handover_t.c.agency, handover_t.c.status,
                      handover_t.c.due_at)
            .where(any_of(handover_t.c.case_id), sa.or_(declined, unanswered))
            .order_by(handover_t.c.case_id, handover_t.c.position))


_HANDOVER_ALERTS = Fixed(_handover_alerts_query())


def _summary(r: Any, now: datetime) -> dict[str, Any]:
    deadline = deadline_status(r.next_due_at, now, closed=r.closed_at is not None)
    return {"reference": r.reference, "pathway": r.pathway_id, "phase": r.phase, "unit": r.unit,
            "coordinator": r.coordinator,
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
    grants = emergency_grants(uow.conn, case.id, case.sealer)
    if case.part_of is not None:  # a grant to the adult's case covers this child's pathway too
        grants += emergency_grants(uow.conn, case.part_of, key_of(uow.conn, case.part_of, uow.keys))
    return CaseRecord(case, uow.cases.events(case), grants,
                      family_reference(uow.conn, case.part_of), child_pathways(uow.conn, case.id))


def of_unit(conn: sa.Connection, references: list[str], unit: str | None) -> list[str]:
    """Those of ``references`` that are cases of ``unit``, in the order given."""
    if not references:
        return []
    mine = set(conn.execute(sa.select(case_t.c.reference).where(
        case_t.c.reference.in_(references), _of_unit(unit))).scalars())
    return [ref for ref in references if ref in mine]
