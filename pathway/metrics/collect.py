"""Collecting the figures: a handful of aggregate queries over ``pathway_case``, ``step`` and ``case_event``
(SQLAlchemy Core, the same on SQLite and PostgreSQL), each filtered by the period range. Only the completed
occurrences come row by row (one query per tertial, narrow rows: the database works out period, on-time flag and
elapsed seconds), because percentiles need every lead time and a pause is taken off with the working-day calendar,
which SQL does not have.

Figures are kept at the finest level (unit, month) and then rolled up to all units and to tertials."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from pathway.crypto import KeyRing
from pathway.definition import Offset, PathwayDefinition
from pathway.metrics.checkpoints import Interval, intervals, offset_of
from pathway.metrics.lead_times import Pause, done_on_time, lead_hours
from pathway.metrics.periods import months_of, period_bounds, period_dates, period_key
from pathway.store.casekeys import ERASED_TEXT, opener
from pathway.store.tables import case_t, definition_t, event_t, step_t

Resolver = Callable[[str, int], PathwayDefinition]
Cell = tuple[str, str, str, str | None, str]  # pathway, measure, sub, unit (None: all), period
COORDINATOR_BY = "assign_coordinator"


class Collected:
    """Figures at the finest level (unit, month), then rolled up to all units and to tertials."""

    def __init__(self, months: list[str], definitions: dict[tuple[str, int], PathwayDefinition]) -> None:
        self.months = months
        self.starts = [period_bounds(m)[0] for m in months]
        self.tertial = {m: period_key(period_dates(m)[0], "tertial") for m in months}
        self.definitions = definitions
        self.counts: Counter[Cell] = Counter()
        self.leads: defaultdict[Cell, list[float]] = defaultdict(list)
        self.reasons: defaultdict[Cell, Counter[str]] = defaultdict(Counter)
        # Per tertial (the unit every report is cut from, so that every span shows a tertial the same way): how each
        # reason was written, and in which cases it was given.
        self.texts: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        # Free text could name a person; a reason is shown only when it was given in 5 or more different cases.
        self.reason_cases: defaultdict[tuple[str, str], set[Any]] = defaultdict(set)
        self.intervals: dict[tuple[str, str], Interval] = {}
        self.outcomes: dict[str, list[str]] = {}
        for (pathway, _), definition in sorted(definitions.items(), key=lambda kv: -kv[0][1]):
            for iv in intervals(definition):
                self.intervals.setdefault((pathway, iv.id), iv)
            codes = self.outcomes.setdefault(pathway, [])
            codes += [c for c in definition.outcomes if c not in codes]

    def interval(self, pathway: str, code: str, repeat: bool) -> Interval | None:
        return self.intervals.get((pathway, f"{code}{'+' if repeat else ''}"))

    def kind(self, pathway: str, version: int, code: str, occurrence: int) -> tuple[Interval, Offset | None] | None:
        """The interval an occurrence belongs to and the offset of its deadline (None: not a checkpoint)."""
        definition = self.definitions.get((pathway, version))
        checkpoint = definition.checkpoint.get(code) if definition is not None else None
        if checkpoint is None:
            return None
        repeat, offset = offset_of(checkpoint, occurrence)
        iv = self.interval(pathway, code, repeat)
        return None if iv is None else (iv, offset)

    def rolled(self) -> tuple[Counter[Cell], dict[Cell, list[float]], dict[Cell, Counter[str]]]:
        """Counts, lead times and reasons, each cell also added to all units and to its tertial."""
        counts: Counter[Cell] = Counter()
        leads: defaultdict[Cell, list[float]] = defaultdict(list)
        reasons: defaultdict[Cell, Counter[str]] = defaultdict(Counter)
        for cell, n in self.counts.items():
            for up in self._up(cell):
                counts[up] += n
        for cell, xs in self.leads.items():
            for up in self._up(cell):
                leads[up].extend(xs)
        for cell, c in self.reasons.items():
            for up in self._up(cell):
                reasons[up].update(c)
        return counts, leads, reasons

    def _up(self, cell: Cell) -> Iterable[Cell]:
        pathway, measure, sub, unit, month = cell
        for u in (unit, None):
            for p in (month, self.tertial[month]):
                yield pathway, measure, sub, u, p


def _registered(conn: sa.Connection, resolve: Resolver) -> dict[tuple[str, int], PathwayDefinition]:
    keys = conn.execute(sa.select(definition_t.c.pathway_id, definition_t.c.version)).all()
    return {(p, v): resolve(p, v) for p, v in keys}


def _month_case(column: Any, data: Collected) -> Any:
    bounds = data.starts[1:] + [period_bounds(data.months[-1])[1]]
    return sa.case((column < data.starts[0], sa.null()),
                   *[(column < b, m) for m, b in zip(data.months, bounds, strict=True)], else_=sa.null())


def _not_paused_before(due: Any) -> Any:
    """A deadline that fell inside a pause that still lasts has not passed: the clock stands still."""
    return sa.or_(case_t.c.paused_since.is_(None), due < case_t.c.paused_since)


def _seconds_between(conn: sa.Connection, start: Any, end: Any) -> Any:
    """``end - start`` in seconds, in SQL."""
    if conn.dialect.name == "sqlite":
        return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0
    return sa.cast(sa.extract("epoch", end - start), sa.Float)


def _took_effect_at(conn: sa.Connection, moment: Any) -> Any:
    """Whether an event took effect at ``moment``: at its payload's ``effective_at`` where it was recorded after the
    fact (an ISO text, read as a time), or else at ``at``, when it was recorded."""
    effective = event_t.c.payload["effective_at"].as_string()
    if conn.dialect.name == "sqlite":  # times are texts there, in another format than the payload's
        same = sa.func.julianday(effective) == sa.func.julianday(moment)
    else:
        same = sa.cast(effective, sa.DateTime(timezone=True)) == moment
    return sa.or_(sa.and_(effective.is_(None), event_t.c.at == moment), same)


def _reason_key(text: str) -> str:
    """A reason as compared: without case and surrounding or repeated spaces."""
    return " ".join(text.split()).casefold()



def _ever_paused() -> Any:
    """The cases that were ever paused: resumed since (the small partial index of resumes finds those), or paused
    now."""
    return sa.union(sa.select(event_t.c.case_id.label("case_id")).where(event_t.c.operation == "resume"),
                    sa.select(case_t.c.id.label("case_id")).where(case_t.c.paused_since.is_not(None))).subquery()


def _pauses(conn: sa.Connection, cases: Any) -> dict[Any, list[Pause]]:
    """The pauses of the cases ``cases`` (a query of case ids), each from when it took effect to the resume (open:
    still paused), oldest first."""
    query = (sa.select(event_t.c.case_id, event_t.c.operation, event_t.c.at,
                       event_t.c.payload["effective_at"].as_string().label("effective_at"))
             .where(event_t.c.case_id.in_(cases), event_t.c.operation.in_(("pause", "resume")))
             .order_by(event_t.c.case_id, event_t.c.seq))
    found: defaultdict[Any, list[Pause]] = defaultdict(list)
    for case_id, operation, at, effective in conn.execute(query):
        when = at if effective is None else datetime.fromisoformat(effective)
        when = when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
        pauses = found[case_id]
        if operation == "pause":
            pauses.append((when, None))
        elif pauses and pauses[-1][1] is None:
            pauses[-1] = (pauses[-1][0], when)
    return found


def _collect_done(conn: sa.Connection, data: Collected, lo: datetime, hi: datetime,
                  open_text: Callable[[uuid.UUID, str | None], str | None]) -> None:
    """The done occurrences completed in the range (their lead times, and the reason of a late completion: its event
    found by when it took effect, which is when the step ended, also where it was recorded later) or whose deadline
    fell in it (done on time or late): one query of narrow rows. The database works out the periods, whether it was
    on time and the elapsed seconds; only occurrences of cases that were ever paused bring their timestamps, to take
    the paused time off (see ``lead_times``)."""
    late_note = sa.and_(
        event_t.c.case_id == step_t.c.case_id, _took_effect_at(conn, step_t.c.ended_at),
        event_t.c.operation == "complete", event_t.c.reason.is_not(None),
        event_t.c.payload["code"].as_string() == step_t.c.code,
    )
    in_range = sa.or_(sa.and_(step_t.c.ended_at >= lo, step_t.c.ended_at < hi),
                      sa.and_(step_t.c.due_at >= lo, step_t.c.due_at < hi))
    done = sa.and_(step_t.c.state == "done", step_t.c.adhoc.is_(False), step_t.c.due_at.is_not(None), in_range)
    ever = _ever_paused()

    def when_paused(column: Any) -> Any:
        return sa.case((ever.c.case_id.is_not(None), column), else_=sa.null())

    query = (
        sa.select(case_t.c.pathway_id, case_t.c.definition_version, case_t.c.unit, step_t.c.code,
                  step_t.c.occurrence, _month_case(step_t.c.ended_at, data).label("period"),
                  _month_case(step_t.c.due_at, data).label("due_period"),
                  sa.case((step_t.c.ended_at <= step_t.c.due_at, 1), else_=0).label("within"),
                  _seconds_between(conn, step_t.c.anchor_at, step_t.c.ended_at).label("elapsed"),
                  when_paused(step_t.c.anchor_at).label("anchor_at"), when_paused(step_t.c.due_at).label("due_at"),
                  when_paused(step_t.c.ended_at).label("ended_at"), event_t.c.reason, step_t.c.case_id)
        .select_from(step_t.join(case_t, case_t.c.id == step_t.c.case_id).outerjoin(event_t, late_note)
                     .outerjoin(ever, ever.c.case_id == step_t.c.case_id))
        .where(done)
    )
    pauses = _pauses(conn, sa.select(ever.c.case_id).where(
        ever.c.case_id.in_(sa.select(step_t.c.case_id).where(done))))
    own = {m for m, start in zip(data.months, data.starts, strict=True) if lo <= start < hi}
    kinds: dict[tuple[str, int, str, int], str | None] = {}
    counts, leads, reasons, texts = data.counts, data.leads, data.reasons, data.texts
    for pathway, version, unit, code, occurrence, period, due_period, within, elapsed, anchor_at, due_at, ended_at, \
            reason, case_id in conn.execute(query):
        key = (pathway, version, code, occurrence)
        if key not in kinds:
            found = data.kind(pathway, version, code, occurrence)
            kinds[key] = None if found is None else found[0].id
        iv_id = kinds[key]
        if iv_id is None:
            continue
        paused = pauses.get(case_id, []) if anchor_at is not None else []
        if due_period in own:
            on_time = done_on_time(due_at, ended_at, paused) if paused else bool(within)
            counts[(pathway, "on_time" if on_time else "late", iv_id, unit, due_period)] += 1
        if period not in own:
            continue
        cell: Cell = (pathway, "completed", iv_id, unit, period)
        counts[cell] += 1
        if paused:
            leads[cell].append(lead_hours(anchor_at, ended_at, paused))
        elif elapsed is not None:
            leads[cell].append(float(elapsed) / 3600)
        reason = open_text(case_id, reason)
        if reason == ERASED_TEXT:  # an erased case's: counted with the reasons not named, never named itself
            reasons[cell][ERASED_REASON] += 1
        elif reason is not None:
            r = _reason_key(reason)
            reasons[cell][r] += 1
            texts[data.tertial[period], r][reason.strip()] += 1
            data.reason_cases[data.tertial[period], r].add(case_id)


ERASED_REASON = "\x00erased"  # the key of erased cases' reasons: no reason text compares equal, none is named


def _collect_overdue(conn: sa.Connection, data: Collected, lo: datetime, hi: datetime, now: datetime) -> None:
    inner = (
        sa.select(case_t.c.pathway_id, case_t.c.definition_version, case_t.c.unit, step_t.c.code,
                  step_t.c.occurrence, _month_case(step_t.c.due_at, data).label("period"))
        .select_from(step_t.join(case_t, case_t.c.id == step_t.c.case_id))
        .where(step_t.c.ended_at.is_(None), step_t.c.due_at.is_not(None), step_t.c.adhoc.is_(False),
               step_t.c.due_at >= lo, step_t.c.due_at < hi, step_t.c.due_at < now,
               _not_paused_before(step_t.c.due_at))
    ).subquery()
    cols = [inner.c.pathway_id, inner.c.definition_version, inner.c.unit, inner.c.code, inner.c.occurrence,
            inner.c.period]
    for row in conn.execute(sa.select(*cols, sa.func.count().label("n")).group_by(*cols)):
        kind = data.kind(row.pathway_id, row.definition_version, row.code, row.occurrence)
        if kind is not None:
            data.counts[(row.pathway_id, "overdue", kind[0].id, row.unit, row.period)] += int(row.n)


def _cases_by_month(conn: sa.Connection, data: Collected, at: sa.Column[Any], by: sa.Column[Any], lo: datetime,
                    hi: datetime) -> sa.CursorResult[Any]:
    """The cases whose ``at`` lies in the range, counted (``n``) per pathway, unit, month of ``at`` and ``by``."""
    inner = (
        sa.select(case_t.c.pathway_id, case_t.c.unit, by, _month_case(at, data).label("period"))
        .where(at >= lo, at < hi)
    ).subquery()
    cols = [inner.c.pathway_id, inner.c.unit, inner.c.period, inner.c[by.name]]
    return conn.execute(sa.select(*cols, sa.func.count().label("n")).group_by(*cols))


def _collect_cases(conn: sa.Connection, data: Collected, lo: datetime, hi: datetime) -> None:
    for row in _cases_by_month(conn, data, case_t.c.opened_at, case_t.c.repeat_contact, lo, hi):
        data.counts[(row.pathway_id, "opened", "", row.unit, row.period)] += int(row.n)
        if row.repeat_contact:
            data.counts[(row.pathway_id, "repeat", "", row.unit, row.period)] += int(row.n)

    for row in _cases_by_month(conn, data, case_t.c.closed_at, case_t.c.outcome, lo, hi):
        data.counts[(row.pathway_id, "closed", "", row.unit, row.period)] += int(row.n)
        outcome = row.outcome or "(none)"
        data.counts[(row.pathway_id, "outcome", outcome, row.unit, row.period)] += int(row.n)
        codes = data.outcomes.setdefault(row.pathway_id, [])
        if outcome not in codes:
            codes.append(outcome)


def _collect_coordinator(conn: sa.Connection, data: Collected, lo: datetime, hi: datetime, now: datetime) -> None:
    """Per month of first contact: the cases whose coordinator checkpoint is done or overdue now, and how many of
    them got one within the deadline."""
    coordinator = {key: next((c.code for c in d.checkpoints if c.completed_by == COORDINATOR_BY), None)
                   for key, d in data.definitions.items()}
    codes = sorted({c for c in coordinator.values() if c is not None})
    if not codes:
        return
    done = step_t.c.state == "done"
    inner = (
        sa.select(
            case_t.c.pathway_id, case_t.c.definition_version, case_t.c.unit, step_t.c.code,
            _month_case(case_t.c.opened_at, data).label("period"),
            sa.case((sa.and_(done, step_t.c.ended_at <= step_t.c.due_at), 1), else_=0).label("within"),
            sa.case((done, 1), else_=0).label("done"),
            sa.case((sa.and_(step_t.c.ended_at.is_(None), step_t.c.due_at < now,
                             _not_paused_before(step_t.c.due_at)), 1), else_=0).label("overdue"),
        )
        .select_from(step_t.join(case_t, case_t.c.id == step_t.c.case_id))
        .where(case_t.c.opened_at >= lo, case_t.c.opened_at < hi, step_t.c.code.in_(codes),
               step_t.c.occurrence == 1, step_t.c.adhoc.is_(False))
    ).subquery()
    cols = [inner.c.pathway_id, inner.c.definition_version, inner.c.unit, inner.c.code, inner.c.period]
    query = sa.select(*cols, sa.func.sum(inner.c.within).label("within"), sa.func.sum(inner.c.done).label("done"),
                      sa.func.sum(inner.c.overdue).label("overdue")).group_by(*cols)
    for row in conn.execute(query):
        if coordinator.get((row.pathway_id, row.definition_version)) != row.code:
            continue
        n_done, within, overdue = int(row.done or 0), int(row.within or 0), int(row.overdue or 0)
        for measure, n in (("coordinator", n_done + overdue), ("coordinator_on_time", within),
                           ("coordinator_late", n_done - within), ("coordinator_overdue", overdue)):
            data.counts[(row.pathway_id, measure, "", row.unit, row.period)] += n


def collect(*, engine: sa.Engine, resolve: Resolver, tertials: list[str], now: datetime,
            keys: KeyRing | None = None) -> Collected:
    """The figures of every month of ``tertials`` (consecutive, oldest first), at the finest level; ``now``
    decides what is overdue. ``keys`` opens the deviation reasons, sealed under each case's own key (the reason of
    an erased case reads as ``ERASED_TEXT``, one of the reasons too rare to name)."""
    months = [m for t in tertials for m in months_of(t)]
    lo, hi = period_bounds(tertials[0])[0], period_bounds(tertials[-1])[1]
    with engine.connect() as conn:
        data = Collected(months, _registered(conn, resolve))
        for tertial in tertials:  # one tertial at a time: memory stays bounded, PostgreSQL may run it in parallel
            _collect_done(conn, data, *period_bounds(tertial), open_text=opener(conn, keys))
        _collect_overdue(conn, data, lo, hi, now)
        _collect_cases(conn, data, lo, hi)
        _collect_coordinator(conn, data, lo, hi, now)
    for (pathway, measure, sub, unit, period), n in list(data.counts.items()):
        if measure in ("on_time", "late", "overdue"):  # the deadlines of the period, as the three add up to them
            data.counts[(pathway, "due", sub, unit, period)] += n
        elif measure == "opened":  # a first contact: no earlier case within 12 months
            repeat = data.counts[(pathway, "repeat", sub, unit, period)]
            data.counts[(pathway, "first", sub, unit, period)] += n - repeat
    return data
