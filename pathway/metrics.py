"""Timeliness figures for managers: aggregates only, never a person.

``timeliness`` answers, per checkpoint interval ("K0→K1": a checkpoint and the anchor its deadline counts from)
and per period (month "2026-11" or tertial "2026-T3"; January–April is T1, May–August T2, September–December
T3; dates are read in Europe/Oslo), for all units together or for one unit:

- ``completed``: occurrences done in the period (by the time they were done);
- ``within_deadline_share``: the share of those done by their deadline (``ended_at <= due_at``; ``due_at``
  already includes paused time, because resuming moves every open deadline);
- ``median_hours`` / ``p90_hours``: lead time in hours with paused time left out:
  ``(ended_at - anchor_at) - (due_at - base_due)``, ``base_due`` being the deadline the definition gives
  (``calendar.shift(anchor_at, offset)``; the repeat rule's offset for the 2nd, 3rd... occurrence of a repeating
  checkpoint, named "K12→K12"). Percentiles interpolate linearly between the nearest ranks (as PostgreSQL's
  ``percentile_cont``);
- ``overdue_now``: occurrences still open at ``now`` whose deadline has passed, by the period of the deadline
  (a deadline that fell inside a pause that still lasts is not overdue: the clock stands still);
- ``deviation_reasons``: the documented reasons of late completions (the reason of ``complete`` events), counted
  per reason text (compared without case and surrounding or repeated spaces).

and per period the case figures: cases ``opened`` (by first contact), the share with a coordinator within the
deadline (the checkpoint completed by ``assign_coordinator``, K3: two working days), among the cases where that is
decided (done, or overdue now), cases ``closed`` and their ``outcomes``, the return-to-abuser rate at closure, and
``repeat_contact`` (a new contact within 12 months, ``pathway_case.repeat_contact``) among the cases opened.

Small-count suppression, so that no person can be recognised
---------------------------------------------------------------
- Every published count from 1 to 4 is given as the string ``"<5"`` (primary suppression). 0 is shown: it
  describes nobody.
- Complementary suppression: counts that add up to another published count form a group (outcome codes add up to
  the cases closed; units add up to all units; the four months of a tertial add up to the tertial). Whenever such a
  total is shown, no suppressed count of its group may be worked out from it: a group never has exactly one
  suppressed count, and every ``"<5"`` must keep at least two possible values when the visible counts are
  subtracted from the total (someone who knows that ``"<5"`` means 1–4 and ``"x"`` means 5 or more). If that
  does not hold, the smallest visible count of 5 or more in the group is hidden as ``"x"``, and again, until it
  holds; when nothing is left to hide, the total itself is hidden as ``"x"``. This runs to a fixpoint over all
  groups together.
- The decisions are taken over the whole breakdown (every unit, every month of every tertial touched) and only then
  is the requested slice returned, so a report for one unit, for all units, by month or by tertial are consistent:
  no figure of one report can be subtracted from another's to undo a suppression. The period range is widened to
  whole periods (whole tertials internally) for the same reason.
- Shares and percentiles are given (as numbers) only when their base count is shown and at least 5; otherwise
  ``None``. A rate whose numerator is a published count (returned to abuser, repeat contact) is ``None`` whenever
  that count is suppressed, so the rate cannot undo it.
- Deviation reasons: a reason text is named only when it was given at least 5 times in the row and is named in
  every finer row (unit, month) where it occurs; the rest are added up under ``"other (<5)"``. When that bucket
  would hold 1–4, the least frequent named reason joins it too (until it holds 5 or more, or nothing is named; then
  its count is ``"<5"``). A bucket of 0 is left out.

The SQL is a handful of aggregate queries over ``pathway_case``, ``step`` and ``case_event`` (SQLAlchemy Core,
the same on SQLite and PostgreSQL), each filtered by the period range; only the completed occurrences are streamed
row by row (narrow rows), because lead times need the working-day calendar, which SQL does not have.
"""

from __future__ import annotations

import csv
import io
import json
import math
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any, Literal, TypeVar

import sqlalchemy as sa

from pathway.calendar import OSLO, Unit, shift
from pathway.definition import CONSENT_PREFIX, FIRST_CONTACT, Checkpoint, Offset, PathwayDefinition
from pathway.store.tables import case_t, definition_t, event_t, step_t

__all__ = [
    "HIDDEN", "MIN_COUNT", "OTHER", "SMALL", "CaseFigures", "Count", "Interval", "IntervalFigures", "Period",
    "Report", "fold_reasons", "intervals", "lead_hours", "percentile", "period_bounds", "period_key",
    "periods_covering", "suppress", "timeliness", "to_csv",
]

Period = Literal["month", "tertial"]
Count = int | str  # an exact count (0 or at least 5), SMALL (1–4) or HIDDEN (5 or more, hidden to protect a SMALL)
Resolver = Callable[[str, int], PathwayDefinition]
K = TypeVar("K", bound=Hashable)

MIN_COUNT = 5
SMALL = "<5"
HIDDEN = "x"
OTHER = "other (<5)"
RETURNED_TO_ABUSER = "returned_to_abuser"
COORDINATOR_BY = "assign_coordinator"
ALL_UNITS_CSV = "*"
_SHOWN = "shown"


# -- periods ---------------------------------------------------------------------------------------------------


def _local_date(at: datetime | date) -> date:
    if isinstance(at, datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("naive datetime: a timezone-aware datetime is required")
        return at.astimezone(OSLO).date()
    return at


def period_key(at: datetime | date, period: Period) -> str:
    """The period of a moment (read in Europe/Oslo) or a date: ``"2026-11"`` or ``"2026-T3"``."""
    day = _local_date(at)
    if period == "month":
        return f"{day.year:04d}-{day.month:02d}"
    if period == "tertial":
        return f"{day.year:04d}-T{(day.month - 1) // 4 + 1}"
    raise ValueError(f"unknown period '{period}' (month or tertial)")


def _parse(key: str) -> tuple[int, int, int]:
    """(year, first month, number of months) of a period key."""
    try:
        year_text, rest = key.split("-")
        year = int(year_text)
        if rest.startswith("T") and rest[1:] in ("1", "2", "3"):
            return year, (int(rest[1:]) - 1) * 4 + 1, 4
        month = int(rest)
        if len(rest) == 2 and 1 <= month <= 12 and len(year_text) == 4:
            return year, month, 1
    except ValueError:
        pass
    raise ValueError(f"not a period key: '{key}' (e.g. 2026-11 or 2026-T3)")


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + month - 1 + n
    return index // 12, index % 12 + 1


def period_dates(key: str) -> tuple[date, date]:
    """The first day of a period and the first day after it."""
    year, month, n = _parse(key)
    end_year, end_month = _add_months(year, month, n)
    return date(year, month, 1), date(end_year, end_month, 1)


def period_bounds(key: str) -> tuple[datetime, datetime]:
    """A period as UTC instants ``[start, end)``: Oslo midnight at its first day and at the first day after it."""
    first, after = period_dates(key)
    return (datetime.combine(first, time(), tzinfo=OSLO).astimezone(timezone.utc),
            datetime.combine(after, time(), tzinfo=OSLO).astimezone(timezone.utc))


def months_of(key: str) -> list[str]:
    """The months of a period (a month is its own only month)."""
    year, month, n = _parse(key)
    return [f"{y:04d}-{m:02d}" for y, m in (_add_months(year, month, i) for i in range(n))]


def periods_covering(start: date, end: date, period: Period) -> list[str]:
    """Every period that overlaps the days ``start``..``end`` (both included), oldest first."""
    if end < start:
        raise ValueError("end lies before start")
    keys, day = [], start.replace(day=1)
    while day <= end:
        key = period_key(day, period)
        if not keys or keys[-1] != key:
            keys.append(key)
        day = period_dates(key)[1]
    return keys


# -- numbers ---------------------------------------------------------------------------------------------------


def percentile(values: Iterable[float], q: float) -> float:
    """The q-quantile (0 ≤ q ≤ 1), interpolating linearly between the nearest ranks (``percentile_cont``)."""
    xs = sorted(values)
    if not xs:
        raise ValueError("no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must lie between 0 and 1")
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@lru_cache(maxsize=1 << 16)
def _shift(anchor: datetime, amount: int, unit: Unit) -> datetime:
    return shift(anchor, amount, unit)


def lead_hours(anchor_at: datetime, due_at: datetime, ended_at: datetime, offset: Offset) -> float:
    """Hours from anchor to completion with paused time left out: the time the deadline was moved by pauses
    (``due_at`` minus the definition's deadline) is taken off."""
    base_due = _shift(anchor_at, offset.amount, offset.unit)
    paused = max(due_at - base_due, timedelta(0))
    return (ended_at - anchor_at - paused).total_seconds() / 3600


def _share(numerator: int, base: Count) -> float | None:
    if not isinstance(base, int) or base < MIN_COUNT:
        return None
    return round(numerator / base, 3)


# -- suppression -----------------------------------------------------------------------------------------------


def _small(n: int) -> bool:
    return 0 < n < MIN_COUNT


def _exposed(total: int, values: Sequence[int], states: Sequence[str]) -> bool:
    """Whether the published group lets someone work out a suppressed member from the total."""
    hidden = [i for i, s in enumerate(states) if s != _SHOWN]
    if not hidden:
        return False
    if len(hidden) == 1:
        return True
    rest = total - sum(v for v, s in zip(values, states, strict=True) if s == _SHOWN)
    lo = {i: 1 if states[i] == SMALL else MIN_COUNT for i in hidden}
    lo_sum = sum(lo.values())
    unbounded = sum(1 for i in hidden if states[i] != SMALL)  # HIDDEN: 5 or more, no upper bound known
    hi_sum = sum(MIN_COUNT - 1 for i in hidden if states[i] == SMALL)
    for i in hidden:
        if states[i] != SMALL:
            continue
        others_lo = lo_sum - lo[i]
        low = lo[i] if unbounded else max(lo[i], rest - (hi_sum - (MIN_COUNT - 1)))
        high = min(MIN_COUNT - 1, rest - others_lo)
        if high - low < 1:
            return True
    return False


def suppress(values: Mapping[K, int], groups: Iterable[tuple[K, Sequence[K]]]) -> dict[K, Count]:
    """Published values: counts 1–4 become SMALL; then, for every group ``(total, members)`` with
    ``values[total] == sum(values[m] for m in members)``, the smallest visible members of 5 or more (and, when
    none is left, the total) become HIDDEN until no suppressed member can be worked out from the total
    (see the module's docstring). Deterministic: ties go to the member listed first."""
    groups = [(total, list(members)) for total, members in groups]
    for key, value in values.items():
        if value < 0:
            raise ValueError(f"negative count at {key!r}")
    for total, members in groups:
        if values[total] != sum(values[m] for m in members):
            raise ValueError(f"group {total!r}: the members do not add up to the total")
    state = {key: SMALL if _small(value) else _SHOWN for key, value in values.items()}
    changed = True
    while changed:
        changed = False
        for total, members in groups:
            if state[total] != _SHOWN:
                continue
            vals = [values[m] for m in members]
            while _exposed(values[total], vals, [state[m] for m in members]):
                candidates = [(values[m], i) for i, m in enumerate(members)
                              if state[m] == _SHOWN and values[m] >= MIN_COUNT]
                if candidates:
                    state[members[min(candidates)[1]]] = HIDDEN
                else:
                    state[total] = HIDDEN
                changed = True
                if state[total] != _SHOWN:
                    break
    return {key: values[key] if s == _SHOWN else s for key, s in state.items()}


def _fold(counts: Mapping[str, int], allowed: Callable[[str], bool] | None = None) -> tuple[set[str], int]:
    named = {r for r, n in counts.items() if n >= MIN_COUNT and (allowed is None or allowed(r))}
    other = sum(n for r, n in counts.items() if r not in named)
    while named and _small(other):
        least = min(named, key=lambda r: (counts[r], r))
        named.discard(least)
        other += counts[least]
    return named, other


def fold_reasons(counts: Mapping[str, int], allowed: Callable[[str], bool] | None = None) -> dict[str, Count]:
    """Reason texts given at least 5 times (and ``allowed``) keep their count; the rest are added up under OTHER,
    which takes in the least frequent named reasons while it would hold 1–4. OTHER is SMALL only when nothing is
    named, and left out when 0."""
    named, other = _fold(counts, allowed)
    shown: dict[str, Count] = {r: counts[r] for r in sorted(named, key=lambda r: (-counts[r], r))}
    if other:
        shown[OTHER] = SMALL if _small(other) else other
    return shown


def _reason_key(text: str) -> str:
    return " ".join(text.split()).casefold()


# -- intervals -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Interval:
    """A checkpoint with a deadline, named by its anchor: "K0→K1". ``repeat``: the 2nd, 3rd... occurrence of a
    repeating checkpoint, anchored on the one before ("K12→K12")."""

    pathway: str
    checkpoint: str
    repeat: bool
    name: str
    deadline: str
    order: int

    @property
    def id(self) -> str:
        return f"{self.checkpoint}{'+' if self.repeat else ''}"


def _offset_text(offset: Offset) -> str:
    unit = offset.unit.value.replace("_", " ")
    return f"{offset.amount} {unit[:-1] if abs(offset.amount) == 1 else unit}"


def _anchor_name(definition: PathwayDefinition, anchor: str) -> str:
    if anchor == FIRST_CONTACT:
        return next((c.code for c in definition.checkpoints if c.completed_by == "open"), FIRST_CONTACT)
    return anchor


def intervals(definition: PathwayDefinition) -> list[Interval]:
    """The intervals of a definition, in its checkpoint order: every checkpoint with a deadline, and the repeats."""
    found = []
    for c in definition.checkpoints:
        if c.deadline is None:
            continue
        name = f"{_anchor_name(definition, c.deadline.after)}→{c.code}"
        found.append(Interval(definition.id, c.code, False, name, _offset_text(c.deadline), len(found)))
        if c.repeat:
            every = ", then ".join(
                f"every {_offset_text(r.every)}" + (f" ×{r.times}" if r.times else "") for r in c.repeat)
            found.append(Interval(definition.id, c.code, True, f"{c.code}→{c.code}", every, len(found)))
    return found


def _repeat_offset(checkpoint: Checkpoint, occurrence: int) -> Offset | None:
    """The offset before ``occurrence`` (2, 3, ...) of a repeating checkpoint (as ``cases._repeat_rule``)."""
    n = occurrence - 1
    for rule in checkpoint.repeat:
        if rule.times is None or n <= rule.times:
            return rule.every
        n -= rule.times
    return None


def _offset_of(checkpoint: Checkpoint, occurrence: int) -> tuple[bool, Offset | None]:
    if checkpoint.repeat and occurrence > 1:
        return True, _repeat_offset(checkpoint, occurrence)
    return False, checkpoint.deadline


# -- the report ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntervalFigures:
    pathway: str
    checkpoint: str
    interval: str  # "K0→K1"
    deadline: str  # "24 hours", "2 working days", "every 28 days ×2, then every 42 days"
    period: str  # "2026-11" or "2026-T3"
    unit: str | None  # None: all units
    completed: Count
    within_deadline_share: float | None
    median_hours: float | None
    p90_hours: float | None
    overdue_now: Count
    deviation_reasons: dict[str, Count]


@dataclass(frozen=True, slots=True)
class CaseFigures:
    pathway: str
    period: str
    unit: str | None
    opened: Count
    coordinator_decided: Count  # cases whose coordinator checkpoint is done or overdue now
    coordinator_within_share: float | None
    closed: Count
    outcomes: dict[str, Count]
    returned_to_abuser_share: float | None
    repeat_contact: Count
    repeat_contact_share: float | None


@dataclass(frozen=True, slots=True)
class Report:
    period: Period
    start: date
    end: date
    unit: str | None
    generated_at: datetime
    periods: tuple[str, ...]
    intervals: tuple[IntervalFigures, ...]
    cases: tuple[CaseFigures, ...]


# -- collecting ------------------------------------------------------------------------------------------------

Cell = tuple[str, str, str, str | None, str]  # pathway, measure, sub, unit (None: all), period


class _Data:
    """Figures at the finest level (unit, month), then rolled up to all units and to tertials."""

    def __init__(self, months: list[str], definitions: dict[tuple[str, int], PathwayDefinition]) -> None:
        self.months = months
        self.starts = [period_bounds(m)[0] for m in months]
        self.tertial = {m: period_key(period_dates(m)[0], "tertial") for m in months}
        self.definitions = definitions
        self.counts: Counter[Cell] = Counter()
        self.within: Counter[Cell] = Counter()
        self.leads: defaultdict[Cell, list[float]] = defaultdict(list)
        self.reasons: defaultdict[Cell, Counter[str]] = defaultdict(Counter)
        self.texts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.intervals: dict[tuple[str, str], Interval] = {}
        self.outcomes: dict[str, list[str]] = {}
        for (pathway, _), definition in sorted(definitions.items(), key=lambda kv: -kv[0][1]):
            for iv in intervals(definition):
                self.intervals.setdefault((pathway, iv.id), iv)
            codes = self.outcomes.setdefault(pathway, [])
            codes += [c for c in definition.outcomes if c not in codes]

    def month(self, at: datetime) -> str:
        return self.months[bisect_right(self.starts, at) - 1]

    def interval(self, pathway: str, code: str, repeat: bool) -> Interval | None:
        return self.intervals.get((pathway, f"{code}{'+' if repeat else ''}"))

    def rolled(self) -> tuple[Counter[Cell], Counter[Cell], dict[Cell, list[float]], dict[Cell, Counter[str]]]:
        counts: Counter[Cell] = Counter()
        within: Counter[Cell] = Counter()
        leads: defaultdict[Cell, list[float]] = defaultdict(list)
        reasons: defaultdict[Cell, Counter[str]] = defaultdict(Counter)
        for source, target in ((self.counts, counts), (self.within, within)):
            for cell, n in source.items():
                for up in self._up(cell):
                    target[up] += n
        for cell, xs in self.leads.items():
            for up in self._up(cell):
                leads[up].extend(xs)
        for cell, c in self.reasons.items():
            for up in self._up(cell):
                reasons[up].update(c)
        return counts, within, leads, reasons

    def _up(self, cell: Cell) -> Iterable[Cell]:
        pathway, measure, sub, unit, month = cell
        for u in (unit, None):
            for p in (month, self.tertial[month]):
                yield pathway, measure, sub, u, p


def _registered(conn: sa.Connection, resolve: Resolver) -> dict[tuple[str, int], PathwayDefinition]:
    keys = conn.execute(sa.select(definition_t.c.pathway_id, definition_t.c.version)).all()
    return {(p, v): resolve(p, v) for p, v in keys}


def _month_case(column: Any, data: _Data) -> Any:
    bounds = data.starts[1:] + [period_bounds(data.months[-1])[1]]
    return sa.case(*[(column < b, m) for m, b in zip(data.months, bounds, strict=True)], else_=sa.null())


def _not_paused_before(due: Any) -> Any:
    """A deadline that fell inside a pause that still lasts has not passed: the clock stands still."""
    return sa.or_(case_t.c.paused_since.is_(None), due < case_t.c.paused_since)


def _collect_completed(conn: sa.Connection, data: _Data, lo: datetime, hi: datetime) -> None:
    """Completed occurrences in the range, with the reason of a late completion: one streamed query."""
    late_note = sa.and_(
        event_t.c.case_id == step_t.c.case_id, event_t.c.at == step_t.c.ended_at,
        event_t.c.operation == "complete", event_t.c.reason.is_not(None),
        event_t.c.payload["code"].as_string() == step_t.c.code,
    )
    query = (
        sa.select(case_t.c.pathway_id, case_t.c.definition_version, case_t.c.unit, step_t.c.code,
                  step_t.c.occurrence, step_t.c.anchor_at, step_t.c.due_at, step_t.c.ended_at, event_t.c.reason)
        .select_from(step_t.join(case_t, case_t.c.id == step_t.c.case_id).outerjoin(event_t, late_note))
        .where(step_t.c.state == "done", step_t.c.adhoc.is_(False), step_t.c.due_at.is_not(None),
               step_t.c.ended_at >= lo, step_t.c.ended_at < hi)
    )
    for row in conn.execute(query.execution_options(yield_per=10_000)):
        definition = data.definitions.get((row.pathway_id, row.definition_version))
        checkpoint = definition.checkpoint.get(row.code) if definition is not None else None
        if checkpoint is None:
            continue
        repeat, offset = _offset_of(checkpoint, row.occurrence)
        iv = data.interval(row.pathway_id, row.code, repeat)
        if iv is None:
            continue
        month = data.month(row.ended_at)
        cell: Cell = (row.pathway_id, "completed", iv.id, row.unit, month)
        data.counts[cell] += 1
        if row.ended_at <= row.due_at:
            data.within[cell] += 1
        if offset is not None and row.anchor_at is not None:
            data.leads[cell].append(lead_hours(row.anchor_at, row.due_at, row.ended_at, offset))
        if row.reason is not None:
            key = _reason_key(row.reason)
            data.reasons[cell][key] += 1
            data.texts[key][row.reason.strip()] += 1


def _collect_overdue(conn: sa.Connection, data: _Data, lo: datetime, hi: datetime, now: datetime) -> None:
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
        definition = data.definitions.get((row.pathway_id, row.definition_version))
        checkpoint = definition.checkpoint.get(row.code) if definition is not None else None
        if checkpoint is None:
            continue
        iv = data.interval(row.pathway_id, row.code, _offset_of(checkpoint, row.occurrence)[0])
        if iv is not None:
            data.counts[(row.pathway_id, "overdue", iv.id, row.unit, row.period)] += int(row.n)


def _collect_cases(conn: sa.Connection, data: _Data, lo: datetime, hi: datetime, now: datetime) -> None:
    opened = (
        sa.select(case_t.c.pathway_id, case_t.c.unit, case_t.c.repeat_contact,
                  _month_case(case_t.c.opened_at, data).label("period"))
        .where(case_t.c.opened_at >= lo, case_t.c.opened_at < hi)
    ).subquery()
    cols = [opened.c.pathway_id, opened.c.unit, opened.c.period, opened.c.repeat_contact]
    for row in conn.execute(sa.select(*cols, sa.func.count().label("n")).group_by(*cols)):
        data.counts[(row.pathway_id, "opened", "", row.unit, row.period)] += int(row.n)
        if row.repeat_contact:
            data.counts[(row.pathway_id, "repeat", "", row.unit, row.period)] += int(row.n)

    closed = (
        sa.select(case_t.c.pathway_id, case_t.c.unit, case_t.c.outcome,
                  _month_case(case_t.c.closed_at, data).label("period"))
        .where(case_t.c.closed_at >= lo, case_t.c.closed_at < hi)
    ).subquery()
    cols = [closed.c.pathway_id, closed.c.unit, closed.c.period, closed.c.outcome]
    for row in conn.execute(sa.select(*cols, sa.func.count().label("n")).group_by(*cols)):
        data.counts[(row.pathway_id, "closed", "", row.unit, row.period)] += int(row.n)
        outcome = row.outcome or "(none)"
        data.counts[(row.pathway_id, "outcome", outcome, row.unit, row.period)] += int(row.n)
        codes = data.outcomes.setdefault(row.pathway_id, [])
        if outcome not in codes:
            codes.append(outcome)

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
        cell: Cell = (row.pathway_id, "coordinator", "", row.unit, row.period)
        data.counts[cell] += int(row.done or 0) + int(row.overdue or 0)
        data.within[cell] += int(row.within or 0)


# -- the lattice and the rows ----------------------------------------------------------------------------------


def _measures(data: _Data, pathway: str) -> list[tuple[str, str]]:
    ivs = sorted((iv for (p, _), iv in data.intervals.items() if p == pathway), key=lambda iv: iv.order)
    found = [(m, iv.id) for iv in ivs for m in ("completed", "overdue")]
    found += [("opened", ""), ("repeat", ""), ("coordinator", ""), ("closed", "")]
    found += [("outcome", c) for c in data.outcomes.get(pathway, [])]
    return found


def _lattice(data: _Data, counts: Counter[Cell], tertials: list[str]) -> dict[Cell, Count]:
    """Every published count of the whole breakdown and its groups, suppressed together."""
    values: dict[Cell, int] = {}
    groups: list[tuple[Cell, list[Cell]]] = []
    pathways = sorted({p for p, _ in data.intervals} | {c[0] for c in counts})
    for pathway in pathways:
        measures = _measures(data, pathway)
        outcomes = [s for m, s in measures if m == "outcome"]
        for tertial in tertials:
            months = months_of(tertial)
            units = sorted({c[3] for c in counts if c[0] == pathway and c[3] is not None and c[4] == tertial})
            rows: list[str | None] = [*units, None]
            for measure, sub in measures:
                for u in rows:
                    for p in [*months, tertial]:
                        values[(pathway, measure, sub, u, p)] = counts.get((pathway, measure, sub, u, p), 0)
                for u in rows:  # the months of a tertial add up to the tertial
                    groups.append(((pathway, measure, sub, u, tertial),
                                   [(pathway, measure, sub, u, m) for m in months]))
                for p in [*months, tertial]:  # the units add up to all units
                    groups.append(((pathway, measure, sub, None, p), [(pathway, measure, sub, u, p) for u in units]))
            for u in rows:  # the outcomes add up to the cases closed
                for p in [*months, tertial]:
                    groups.append(((pathway, "closed", "", u, p), [(pathway, "outcome", o, u, p) for o in outcomes]))
    return suppress(values, groups)


def _reason_rows(data: _Data, reasons: dict[Cell, Counter[str]], counts: Counter[Cell],
                 tertials: list[str]) -> dict[Cell, dict[str, Count]]:
    """Deviation reasons per row: a reason is named in a row only if every finer row where it occurs names it."""
    named: dict[Cell, set[str]] = {}
    shown: dict[Cell, dict[str, Count]] = {}

    def row(cell: Cell, children: list[Cell]) -> None:
        own = reasons.get(cell, Counter())

        def allowed(r: str) -> bool:
            return all(r in named.get(c, set()) for c in children if reasons.get(c, Counter()).get(r, 0) > 0)

        names, _ = _fold(own, allowed if children else None)
        named[cell] = names
        folded = fold_reasons(own, lambda r: r in names)
        shown[cell] = {(_display(data, r) if r != OTHER else r): n for r, n in folded.items()}

    for (pathway, iv_id), _ in data.intervals.items():
        for tertial in tertials:
            months = months_of(tertial)
            units = sorted({c[3] for c in counts if c[0] == pathway and c[3] is not None and c[4] == tertial})

            def cell(u: str | None, p: str) -> Cell:
                return (pathway, "completed", iv_id, u, p)  # noqa: B023 - used inside this iteration only

            for u in units:
                for m in months:
                    row(cell(u, m), [])
                row(cell(u, tertial), [cell(u, m) for m in months])
            for m in months:
                row(cell(None, m), [cell(u, m) for u in units])
            row(cell(None, tertial), [cell(u, tertial) for u in units] + [cell(None, m) for m in months])
    return shown


def _display(data: _Data, key: str) -> str:
    """The way a reason was most often written (a reason that reads like the OTHER label is told apart)."""
    variants = data.texts.get(key)
    text = min(variants.items(), key=lambda kv: (-kv[1], kv[0]))[0] if variants else key
    return f"«{text}»" if text == OTHER else text


def timeliness(
    *,
    engine: sa.Engine,
    resolve: Resolver,
    period: Period,
    start: date,
    end: date,
    unit: str | None = None,
    now: datetime,
) -> Report:
    """Timeliness figures per checkpoint interval and per period (every period overlapping ``start``..``end``,
    in full), for ``unit`` or, with ``unit=None``, all units together. Counts below 5 are suppressed as described
    in the module's docstring. ``resolve(pathway_id, version)`` gives a definition (``DefinitionCatalog.resolve``)."""
    if period not in ("month", "tertial"):
        raise ValueError(f"unknown period '{period}' (month or tertial)")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime: now must carry a time zone")
    now = now.astimezone(timezone.utc)
    wanted = periods_covering(start, end, period)
    tertials = periods_covering(start, end, "tertial")
    months = [m for t in tertials for m in months_of(t)]
    lo, hi = period_bounds(tertials[0])[0], period_bounds(tertials[-1])[1]
    with engine.connect() as conn:
        data = _Data(months, _registered(conn, resolve))
        _collect_completed(conn, data, lo, hi)
        _collect_overdue(conn, data, lo, hi, now)
        _collect_cases(conn, data, lo, hi, now)
    counts, within, leads, reasons = data.rolled()
    shown = _lattice(data, counts, tertials)
    reason_rows = _reason_rows(data, reasons, counts, tertials)

    def get(cell: Cell) -> Count:
        return shown.get(cell, counts.get(cell, 0))  # a unit without data in a tertial: all its counts are 0

    interval_rows: list[IntervalFigures] = []
    case_rows: list[CaseFigures] = []
    pathways = sorted({p for p, _ in data.intervals} | {c[0] for c in counts})
    for pathway in pathways:
        ivs = sorted((iv for (p, _), iv in data.intervals.items() if p == pathway), key=lambda iv: iv.order)
        for iv in ivs:
            for p in wanted:
                cell: Cell = (pathway, "completed", iv.id, unit, p)
                completed = get(cell)
                xs = leads.get(cell, [])
                enough = isinstance(completed, int) and completed >= MIN_COUNT and len(xs) >= MIN_COUNT
                interval_rows.append(IntervalFigures(
                    pathway=pathway, checkpoint=iv.checkpoint, interval=iv.name, deadline=iv.deadline, period=p,
                    unit=unit, completed=completed, within_deadline_share=_share(within.get(cell, 0), completed),
                    median_hours=round(percentile(xs, 0.5), 1) if enough else None,
                    p90_hours=round(percentile(xs, 0.9), 1) if enough else None,
                    overdue_now=get((pathway, "overdue", iv.id, unit, p)),
                    deviation_reasons=reason_rows.get(cell, {}),
                ))
        for p in wanted:
            def case(measure: str, sub: str = "") -> Count:
                return get((pathway, measure, sub, unit, p))  # noqa: B023 - used inside this iteration only

            closed, opened, repeat = case("closed"), case("opened"), case("repeat")
            outcomes = {o: case("outcome", o) for o in data.outcomes.get(pathway, [])}
            returned = outcomes.get(RETURNED_TO_ABUSER)
            decided = case("coordinator")
            case_rows.append(CaseFigures(
                pathway=pathway, period=p, unit=unit, opened=opened, coordinator_decided=decided,
                coordinator_within_share=_share(within.get((pathway, "coordinator", "", unit, p), 0), decided),
                closed=closed, outcomes=outcomes,
                returned_to_abuser_share=_share(returned, closed) if isinstance(returned, int) else None,
                repeat_contact=repeat,
                repeat_contact_share=_share(repeat, opened) if isinstance(repeat, int) else None,
            ))
    return Report(period=period, start=start, end=end, unit=unit, generated_at=now, periods=tuple(wanted),
                  intervals=tuple(interval_rows), cases=tuple(case_rows))


# -- CSV -------------------------------------------------------------------------------------------------------

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str) -> str:
    """Text a spreadsheet must not take for a formula."""
    return f"'{value}" if value.startswith(_FORMULA) else value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_csv(report: Report) -> str:
    """The report as CSV (comma-separated, RFC 4180 quoting, UTF-8 text, header row): one row per interval ×
    period × unit (``section`` "interval"), then one per period × unit with the case figures (``section`` "case").
    All units is written as ``*``; a suppressed share is an empty cell; reasons are a JSON object."""
    codes: list[str] = []
    for row in report.cases:
        codes += [c for c in row.outcomes if c not in codes]
    header = ["section", "pathway", "period", "unit", "checkpoint", "interval", "deadline", "completed",
              "within_deadline_share", "median_hours", "p90_hours", "overdue_now", "deviation_reasons", "opened",
              "coordinator_decided", "coordinator_within_share", "closed",
              *[f"outcome_{c}" for c in codes], "returned_to_abuser_share", "repeat_contact",
              "repeat_contact_share"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for r in report.intervals:
        cells = dict(
            section="interval", pathway=_text(r.pathway), period=r.period,
            unit=ALL_UNITS_CSV if r.unit is None else _text(r.unit), checkpoint=_text(r.checkpoint),
            interval=_text(r.interval), deadline=r.deadline, completed=r.completed,
            within_deadline_share=r.within_deadline_share, median_hours=r.median_hours, p90_hours=r.p90_hours,
            overdue_now=r.overdue_now, deviation_reasons=json.dumps(r.deviation_reasons, ensure_ascii=False),
        )
        writer.writerow([_cell(cells.get(h)) for h in header])
    for c in report.cases:
        cells = dict(
            section="case", pathway=_text(c.pathway), period=c.period,
            unit=ALL_UNITS_CSV if c.unit is None else _text(c.unit), opened=c.opened,
            coordinator_decided=c.coordinator_decided, coordinator_within_share=c.coordinator_within_share,
            closed=c.closed, returned_to_abuser_share=c.returned_to_abuser_share, repeat_contact=c.repeat_contact,
            repeat_contact_share=c.repeat_contact_share, **{f"outcome_{k}": v for k, v in c.outcomes.items()},
        )
        writer.writerow([_cell(cells.get(h)) for h in header])
    return out.getvalue()
