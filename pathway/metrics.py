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
- Every published count from 1 to 4 is given as the string ``"<5"`` (primary suppression). A 0 describes nobody
  and is shown as 0, unless it is needed as a complement (below); ``"<5"`` therefore means "0 to 4".
- Complementary suppression: counts that add up to another published count form a sum (the outcome codes add up
  to the cases closed; the units add up to all units; the four months of a tertial add up to the tertial). No
  ``"<5"`` may be worked out from the published sums, also by combining several of them (a unit's months, all
  units' months and the tertials form a two-way table with margins): each ``"<5"`` must keep at least two possible
  values in some table of whole numbers that fits everything published (``"<5"`` = 0–4, ``"x"`` = 5 or more).
  ``suppress`` proves that by finding such a table (moving suppressed counts by ±1 so that every sum still
  holds); while it cannot, it also suppresses the smallest visible member of the sum where the search got stuck
  (the next-smallest cell of that row: a 0 becomes ``"<5"``, a count of 5 or more becomes ``"x"``), and when no
  member is left, the sum's total (``"x"``). Not finding a proof counts as unsafe, so the search can only cause
  extra suppression; on two-way tables with margins it is exact.
- The decisions are taken over the whole breakdown (every unit, every month of every tertial touched) and only then
  is the requested slice returned, so a report for one unit, for all units, by month or by tertial are consistent:
  no figure of one report can be subtracted from another's to undo a suppression. The period range is widened to
  whole periods (whole tertials internally) for the same reason.
- Shares and percentiles are given (as numbers) only when their base count is shown and at least 5; otherwise
  ``None``. A rate whose numerator is a published count (returned to abuser, repeat contact) is ``None`` whenever
  that count is suppressed, so the rate cannot undo it.
- Deviation reasons: each reason text is a count of its own (per row, in the same sums across units and months),
  suppressed like every other count. A row names a reason only when its count there is shown (5 or more, not
  suppressed) and the text was given in at least 5 different cases (free text could name a person); the rest are
  added up under ``"other (<5)"``. When that bucket would hold 1–4, the least frequent
  named reason joins it too (until it holds 5 or more, or nothing is named; then its count is ``"<5"``). A bucket
  of 0 is left out.

The SQL is a handful of aggregate queries over ``pathway_case``, ``step`` and ``case_event`` (SQLAlchemy Core,
the same on SQLite and PostgreSQL), each filtered by the period range. Only the completed occurrences come row by
row (one query per tertial, narrow rows: the database works out period, on-time flag and elapsed seconds), because
percentiles need every lead time and a pause is taken off with the working-day calendar, which SQL does not have.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any, Literal, TypeVar

import sqlalchemy as sa

from pathway.calendar import OSLO, Unit, shift
from pathway.definition import FIRST_CONTACT, Checkpoint, Offset, PathwayDefinition
from pathway.store.tables import case_t, definition_t, event_t, step_t

__all__ = [
    "HIDDEN", "MIN_COUNT", "OTHER", "SMALL", "Breakdown", "CaseFigures", "Count", "Interval", "IntervalFigures",
    "Period", "Report", "breakdown", "default_span", "fold_reasons", "intervals", "lead_hours", "percentile",
    "period_bounds", "period_key", "periods_covering", "reports_for_all_units", "suppress", "timeliness", "to_csv",
]

Period = Literal["month", "tertial"]
Count = int | str  # an exact count (0 or at least 5), SMALL (0–4) or HIDDEN (5 or more, hidden to protect a SMALL)
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


DEFAULT_DAYS = 365


def default_span(today: datetime | date) -> tuple[date, date]:
    """The span of the report when none is asked for: the last 365 days up to ``today`` (a moment is read in
    Europe/Oslo: at 00:30 on 1 January in Oslo the report reaches into January, though UTC is still in December)."""
    day = _local_date(today)
    return day - timedelta(days=DEFAULT_DAYS), day


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


class _Audit:
    """The published counts as a system of sums, and the search for another table that fits it.

    A "<5" is safe when some other table of whole numbers agrees with everything published (every shown count,
    every sum, "<5" meaning 0–4 and "x" meaning 5 or more) and gives it another value. The search moves
    suppressed counts by ±1 so that every sum still holds (a cycle, as in a two-way table); finding one proves the
    value cannot be worked out. Not finding one within the budget counts as unsafe, so the search can only cause
    extra suppression, never too little. Two-way tables with their margins are network tables: there, ±1 cycles
    find every alternative, so the check is exact.
    """

    DEPTH = 24
    BUDGET = 4_000

    def __init__(self, values: Mapping[Any, int], groups: list[tuple[Any, list[Any]]]) -> None:
        self.values = values
        self.state = {key: SMALL if _small(value) else _SHOWN for key, value in values.items()}
        self.sums: list[dict[Any, int]] = []
        self.sums_of: defaultdict[Any, list[int]] = defaultdict(list)
        # Per sum and direction (+1, -1 for the sum): its suppressed counts that have room to move that way, with
        # their step, in the order they were suppressed. A suppressed count stays suppressed, so its room never
        # changes: the search only subtracts the few counts it has moved already, instead of testing every member
        # of a sum at every step (a sum over 300 units has hundreds).
        self.movable: list[dict[int, list[tuple[Any, int]]]] = []
        self.movable_keys: list[dict[int, set[Any]]] = []
        for total, members in groups:
            coeff = {m: 1 for m in members}
            coeff[total] = -1
            self.sums.append(coeff)
            self.movable.append({1: [], -1: []})
            self.movable_keys.append({1: set(), -1: set()})
            e = len(self.sums) - 1
            for key, c in coeff.items():
                self.sums_of[key].append(e)
                if self.state[key] != _SHOWN:
                    self._add_suppressed(e, key, c)

    def _add_suppressed(self, e: int, key: Any, c: int) -> None:
        for need in (1, -1):
            if self._fits(key, need * c):
                self.movable[e][need].append((key, need * c))
                self.movable_keys[e][need].add(key)

    def suppress(self, key: Any) -> None:
        self.state[key] = SMALL if self.values[key] < MIN_COUNT else HIDDEN
        for e in self.sums_of[key]:
            self._add_suppressed(e, key, self.sums[e][key])

    def _fits(self, key: Any, step: int) -> bool:
        value = self.values[key] + step
        return 0 <= value < MIN_COUNT if self.state[key] == SMALL else value >= MIN_COUNT

    def protected(self, key: Any) -> tuple[set[Any], list[tuple[int, int]]]:
        """The counts another fitting table changes, ``key`` among them (each of them can therefore not be worked
        out either); if none is found: empty, and the sums the search got stuck in (with their depth)."""
        stuck: list[tuple[int, int]] = []
        for sign in (1, -1):
            if self._fits(key, sign):
                moved = self._search(key, sign, stuck)
                if moved:
                    return moved, []
        return set(), stuck

    def _search(self, key: Any, sign: int, stuck: list[tuple[int, int]]) -> set[Any]:
        moved: dict[Any, int] = {}
        imbalance: defaultdict[int, int] = defaultdict(int)
        unbalanced: set[int] = set()  # the sums whose imbalance is not 0
        nodes = 0

        def shift(k: Any, step: int) -> None:
            for e in self.sums_of[k]:
                imbalance[e] += self.sums[e][k] * step
                if imbalance[e]:
                    unbalanced.add(e)
                else:
                    unbalanced.discard(e)

        def move(k: Any, step: int) -> None:
            moved[k] = step
            shift(k, step)

        def undo(k: Any) -> None:
            shift(k, -moved.pop(k))

        def search(depth: int) -> bool:
            nonlocal nodes
            open_sums = sorted(unbalanced)
            if not open_sums:
                return True
            if depth >= self.DEPTH or nodes >= self.BUDGET:
                stuck.extend((depth, e) for e in open_sums)
                return False
            # The open sum with the fewest ways to rebalance it (the first of them on a tie); none: stuck.
            best: tuple[int, int, int] | None = None
            for e in open_sums:
                need = -1 if imbalance[e] > 0 else 1
                keys = self.movable_keys[e][need]
                n = len(keys) - sum(1 for k in moved if k in keys)
                if not n:
                    stuck.append((depth, e))
                    return False
                if best is None or n < best[0]:
                    best = (n, e, need)
            assert best is not None
            for k, step in self.movable[best[1]][best[2]]:
                if k in moved:  # the same counts at every turn of this loop: each move is undone before the next
                    continue
                nodes += 1
                move(k, step)
                if search(depth + 1):
                    return True
                undo(k)
            return False

        move(key, sign)
        return set(moved) if search(0) else set()

    def complement(self, key: Any, stuck: list[tuple[int, int]]) -> Any | None:
        """The count to hide next: the smallest visible count (a 0, else one of 5 or more) in the sum the search
        got stuck in nearest to ``key`` (a member before the total); failing that, in the nearest sum linked to
        ``key`` through suppressed counts."""
        order = [e for _, e in sorted(set(stuck))]
        seen: set[int] = set()
        reached, frontier = {key}, [key]
        while True:
            for e in order:
                if e in seen:
                    continue
                seen.add(e)
                pick = self._candidate(e)
                if pick is not None:
                    return pick
            order = []
            for k in frontier:
                for e in self.sums_of[k]:
                    if e not in seen:
                        order.append(e)
            if not order:
                return None
            frontier = [k for e in order for k in self.sums[e] if self.state[k] != _SHOWN and k not in reached]
            reached.update(frontier)

    def _candidate(self, e: int) -> Any | None:
        coeff = self.sums[e]
        members = [(self.values[k], i, k) for i, (k, c) in enumerate(coeff.items())
                   if c > 0 and self.state[k] == _SHOWN and (self.values[k] == 0 or self.values[k] >= MIN_COUNT)]
        if members:
            return min(members)[2]
        total = next(k for k, c in coeff.items() if c < 0)
        if self.state[total] == _SHOWN and self.values[total] >= MIN_COUNT:
            return total
        return None


def suppress(values: Mapping[K, int], groups: Iterable[tuple[K, Sequence[K]]]) -> dict[K, Count]:
    """Published values: counts 1–4 become SMALL; then, as long as some SMALL could be worked out from the
    published sums (``groups``: ``(total, members)`` with ``values[total] == sum(values[m] for m in members)``),
    the smallest visible member of the sum that gives it away is suppressed too (a 0 as SMALL, a count of 5 or
    more as HIDDEN), or, when no member is left, its total. Deterministic for a given input: ties go to the member
    listed first, SMALLs are treated in the order given."""
    groups = [(total, list(members)) for total, members in groups]
    for key, value in values.items():
        if value < 0:
            raise ValueError(f"negative count at {key!r}")
    for total, members in groups:
        if values[total] != sum(values[m] for m in members):
            raise ValueError(f"group {total!r}: the members do not add up to the total")
    audit = _Audit(values, groups)
    safe: set[K] = set()
    for key in [k for k, s in audit.state.items() if s == SMALL]:
        while key not in safe:
            moved, stuck = audit.protected(key)
            if moved:
                safe |= moved  # suppressing more later only adds room: they stay safe
                break
            pick = audit.complement(key, stuck)
            if pick is None:  # everything linked to it is suppressed already
                break
            audit.suppress(pick)
    return {key: values[key] if s == _SHOWN else s for key, s in audit.state.items()}


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


def _offset_of(checkpoint: Checkpoint, occurrence: int) -> tuple[bool, Offset | None]:
    if checkpoint.repeat and occurrence > 1:
        return True, checkpoint.repeat_interval(occurrence)
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
        # Free text could name a person; a reason is shown only when it was given in 5 or more different cases.
        self.reason_cases: defaultdict[str, set[Any]] = defaultdict(set)
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
        repeat, offset = _offset_of(checkpoint, occurrence)
        iv = self.interval(pathway, code, repeat)
        return None if iv is None else (iv, offset)

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


def _seconds_between(conn: sa.Connection, start: Any, end: Any) -> Any:
    """``end - start`` in seconds, in SQL."""
    if conn.dialect.name == "sqlite":
        return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0
    return sa.cast(sa.extract("epoch", end - start), sa.Float)


def _collect_completed(conn: sa.Connection, data: _Data, lo: datetime, hi: datetime) -> None:
    """Completed occurrences in the range, with the reason of a late completion: one query of narrow rows. The
    database works out the period, whether it was on time and the elapsed seconds; only occurrences
    whose case was resumed after their anchor (a pause may have moved the deadline) bring their timestamps, for
    the working-day calendar."""
    late_note = sa.and_(
        event_t.c.case_id == step_t.c.case_id, event_t.c.at == step_t.c.ended_at,
        event_t.c.operation == "complete", event_t.c.reason.is_not(None),
        event_t.c.payload["code"].as_string() == step_t.c.code,
    )
    resumed = (sa.select(event_t.c.case_id, sa.func.max(event_t.c.at).label("last"))
               .where(event_t.c.operation == "resume").group_by(event_t.c.case_id).subquery())
    paused = sa.and_(resumed.c.last.is_not(None), resumed.c.last > step_t.c.anchor_at)

    def when_paused(column: Any) -> Any:
        return sa.case((paused, column), else_=sa.null())

    query = (
        sa.select(case_t.c.pathway_id, case_t.c.definition_version, case_t.c.unit, step_t.c.code,
                  step_t.c.occurrence, _month_case(step_t.c.ended_at, data).label("period"),
                  sa.case((step_t.c.ended_at <= step_t.c.due_at, 1), else_=0).label("within"),
                  _seconds_between(conn, step_t.c.anchor_at, step_t.c.ended_at).label("elapsed"),
                  when_paused(step_t.c.anchor_at).label("anchor_at"), when_paused(step_t.c.due_at).label("due_at"),
                  when_paused(step_t.c.ended_at).label("ended_at"), event_t.c.reason, step_t.c.case_id)
        .select_from(step_t.join(case_t, case_t.c.id == step_t.c.case_id).outerjoin(event_t, late_note)
                     .outerjoin(resumed, resumed.c.case_id == step_t.c.case_id))
        .where(step_t.c.state == "done", step_t.c.adhoc.is_(False), step_t.c.due_at.is_not(None),
               step_t.c.ended_at >= lo, step_t.c.ended_at < hi)
    )
    kinds: dict[tuple[str, int, str, int], tuple[str, Offset | None] | None] = {}
    counts, within, leads, reasons, texts = data.counts, data.within, data.leads, data.reasons, data.texts
    for pathway, version, unit, code, occurrence, period, on_time, elapsed, anchor_at, due_at, ended_at, reason, \
            case_id in conn.execute(query):
        key = (pathway, version, code, occurrence)
        if key not in kinds:
            found = data.kind(pathway, version, code, occurrence)
            kinds[key] = None if found is None else (found[0].id, found[1])
        kind = kinds[key]
        if kind is None:
            continue
        iv_id, offset = kind
        cell: Cell = (pathway, "completed", iv_id, unit, period)
        counts[cell] += 1
        within[cell] += on_time
        if elapsed is not None:
            if anchor_at is not None and offset is not None:
                leads[cell].append(lead_hours(anchor_at, due_at, ended_at, offset))
            else:
                leads[cell].append(float(elapsed) / 3600)
        if reason is not None:
            r = _reason_key(reason)
            reasons[cell][r] += 1
            texts[r][reason.strip()] += 1
            data.reason_cases[r].add(case_id)


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
        kind = data.kind(row.pathway_id, row.definition_version, row.code, row.occurrence)
        if kind is not None:
            data.counts[(row.pathway_id, "overdue", kind[0].id, row.unit, row.period)] += int(row.n)


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


def _reason_sub(iv_id: str, reason: str) -> str:
    return f"{iv_id}\x1f{reason}"


def _lattice(data: _Data, counts: Counter[Cell], reasons: dict[Cell, Counter[str]],
             tertials: list[str]) -> dict[Cell, Count]:
    """Every published count of the whole breakdown and its sums, suppressed together. A deviation reason is a
    count too, in every row where it could be named (given at least 5 times in the tertial over all units)."""
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
            nameable = [("reason", _reason_sub(iv_id, r)) for m, iv_id in measures if m == "completed"
                         for r, n in sorted(reasons.get((pathway, m, iv_id, None, tertial), Counter()).items())
                         if n >= MIN_COUNT]

            def value(measure: str, sub: str, u: str | None, p: str) -> int:
                if measure == "reason":
                    iv_id, r = sub.split("\x1f", 1)
                    return reasons.get((pathway, "completed", iv_id, u, p), Counter()).get(r, 0)  # noqa: B023
                return counts.get((pathway, measure, sub, u, p), 0)  # noqa: B023

            for measure, sub in [*measures, *nameable]:
                for u in rows:
                    for p in [*months, tertial]:
                        values[(pathway, measure, sub, u, p)] = value(measure, sub, u, p)
                for u in rows:  # the months of a tertial add up to the tertial
                    groups.append(((pathway, measure, sub, u, tertial),
                                   [(pathway, measure, sub, u, m) for m in months]))
                for p in [*months, tertial]:  # the units add up to all units
                    groups.append(((pathway, measure, sub, None, p), [(pathway, measure, sub, u, p) for u in units]))
            for u in rows:  # the outcomes add up to the cases closed
                for p in [*months, tertial]:
                    groups.append(((pathway, "closed", "", u, p), [(pathway, "outcome", o, u, p) for o in outcomes]))
    return suppress(values, groups)


def _reasons_shown(data: _Data, cell: Cell, reasons: dict[Cell, Counter[str]],
                   shown: dict[Cell, Count]) -> dict[str, Count]:
    """The deviation reasons of one row: those whose count is published (5 or more, not suppressed), the rest
    added up under OTHER (see ``fold_reasons``)."""
    own = reasons.get(cell, Counter())
    pathway, _, iv_id, unit, period = cell

    def published(r: str) -> bool:
        return (isinstance(shown.get((pathway, "reason", _reason_sub(iv_id, r), unit, period)), int)
                and len(data.reason_cases[r]) >= MIN_COUNT)

    return {(_display(data, r) if r != OTHER else r): n for r, n in fold_reasons(own, published).items()}


def _display(data: _Data, key: str) -> str:
    """The way a reason was most often written (a reason that reads like the OTHER label is told apart)."""
    variants = data.texts.get(key)
    text = min(variants.items(), key=lambda kv: (-kv[1], kv[0]))[0] if variants else key
    return f"«{text}»" if text == OTHER else text


def _checked_now(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime: now must carry a time zone")
    return now.astimezone(timezone.utc)


def _checked_period(period: str) -> None:
    if period not in ("month", "tertial"):
        raise ValueError(f"unknown period '{period}' (month or tertial)")


@dataclass(frozen=True)
class Breakdown:
    """The whole breakdown of ``start``..``end`` (every unit, every month of every tertial touched), suppressed
    once: the expensive part of a report. Any unit's report, by month or by tertial, is a slice of it."""

    start: date
    end: date
    now: datetime
    data: _Data
    counts: Counter[Cell]
    within: Counter[Cell]
    leads: Mapping[Cell, list[float]]
    reasons: dict[Cell, Counter[str]]
    shown: dict[Cell, Count]

    @property
    def units(self) -> list[str]:
        """Every unit with figures in the breakdown."""
        return sorted({c[3] for c in self.counts if c[3] is not None})

    def _get(self, cell: Cell) -> Count:
        return self.shown.get(cell, self.counts.get(cell, 0))  # a unit without data in a tertial: all its counts are 0

    def report(self, period: Period, unit: str | None) -> Report:
        """The report of ``unit`` (``None``: all units together) by ``period``."""
        _checked_period(period)
        data, within, leads, reasons, get = self.data, self.within, self.leads, self.reasons, self._get
        wanted = periods_covering(self.start, self.end, period)
        interval_rows: list[IntervalFigures] = []
        case_rows: list[CaseFigures] = []
        pathways = sorted({p for p, _ in data.intervals} | {c[0] for c in self.counts})
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
                        deviation_reasons=_reasons_shown(data, cell, reasons, self.shown),
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
        return Report(period=period, start=self.start, end=self.end, unit=unit, generated_at=self.now,
                      periods=tuple(wanted), intervals=tuple(interval_rows), cases=tuple(case_rows))

    def reports_for_all_units(self, period: Period) -> dict[str | None, Report]:
        """The report of every unit with figures, and of all units together (key ``None``)."""
        return {unit: self.report(period, unit) for unit in [*self.units, None]}


def breakdown(*, engine: sa.Engine, resolve: Resolver, start: date, end: date, now: datetime) -> Breakdown:
    """Collect, roll up and suppress the whole breakdown of every tertial overlapping ``start``..``end``."""
    now = _checked_now(now)
    tertials = periods_covering(start, end, "tertial")
    months = [m for t in tertials for m in months_of(t)]
    lo, hi = period_bounds(tertials[0])[0], period_bounds(tertials[-1])[1]
    with engine.connect() as conn:
        data = _Data(months, _registered(conn, resolve))
        for tertial in tertials:  # one tertial at a time: memory stays bounded, PostgreSQL may run it in parallel
            _collect_completed(conn, data, *period_bounds(tertial))
        _collect_overdue(conn, data, lo, hi, now)
        _collect_cases(conn, data, lo, hi, now)
    counts, within, leads, reasons = data.rolled()
    shown = _lattice(data, counts, reasons, tertials)
    return Breakdown(start=start, end=end, now=now, data=data, counts=counts, within=within, leads=leads,
                     reasons=reasons, shown=shown)


def reports_for_all_units(*, engine: sa.Engine, resolve: Resolver, period: Period, start: date, end: date,
                          now: datetime) -> dict[str | None, Report]:
    """The report of every unit with figures and of all units together (key ``None``), from one breakdown:
    each is the same as ``timeliness`` gives for that unit."""
    _checked_period(period)
    return breakdown(engine=engine, resolve=resolve, start=start, end=end, now=now).reports_for_all_units(period)


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
    _checked_period(period)
    _checked_now(now)
    periods_covering(start, end, period)  # refuse an end before start before touching the database
    return breakdown(engine=engine, resolve=resolve, start=start, end=end, now=now).report(period, unit)


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
