"""The timeliness report: per checkpoint interval and period, and per period the case figures, for one unit or
all units together (counts suppressed below 5; a share or percentile whose base is not shown is ``None``).

A report is a slice of the whole breakdown of its span (every unit, every month of every tertial touched), which is
suppressed at once before any slice is cut, so that no figure of one report can be subtracted from another's (see
``pathway.metrics.suppression``): ``timeliness`` for one unit or all units, ``reports_for_all_units`` for every
unit."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone

import sqlalchemy as sa

from pathway.crypto import KeyRing
from pathway.metrics.collect import ERASED_REASON, Cell, Collected, Resolver, collect
from pathway.metrics.lead_times import percentile
from pathway.metrics.periods import Period, months_of, period_key, periods_covering
from pathway.metrics.suppression import MIN_COUNT, OTHER, Count, suppress

RETURNED_TO_ABUSER = "returned_to_abuser"
# Per checkpoint interval and period: done in it (lead times), and by the period its deadline fell in: done on
# time, done late, still open past it now.
INTERVAL_MEASURES = ("completed", "due", "on_time", "late", "overdue")
DEADLINE_OUTCOMES = ("on_time", "late", "overdue")  # add up to "due"
COORDINATOR_OUTCOMES = ("coordinator_on_time", "coordinator_late", "coordinator_overdue")  # to "coordinator"


@dataclass(frozen=True, slots=True)
class IntervalFigures:
    pathway: str
    checkpoint: str
    interval: str  # "K0→K1"
    deadline: str  # "24 hours", "2 working days", "every 28 days ×2, then every 42 days"
    period: str  # "2026-11" or "2026-T3"
    unit: str | None  # None: all units
    completed: Count  # done in the period (by when it was done): the base of the lead times
    within_deadline_share: float | None  # done_on_time among the three below
    median_hours: float | None
    p90_hours: float | None
    overdue_now: Count  # whose deadline fell in the period, still open past it now
    deviation_reasons: dict[str, Count]
    due: Count = 0  # whose deadline fell in the period and was met or has passed: the three below
    done_on_time: Count = 0  # whose deadline fell in the period, done by it
    done_late: Count = 0  # whose deadline fell in the period, done after it


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
    partial: tuple[str, ...] = ()  # the periods not over yet when it was made (the current month or tertial)
    by_unit: tuple[CaseFigures, ...] = ()  # all units' report: each unit's case figures (its own report's)
    pathway: str | None = None  # one pathway's figures only (None: every pathway's, each under its own id)

    def of_pathway(self, pathway: str | None) -> Report:
        """The figures of one pathway only (None: all of them). A slice of rows already suppressed together, like a
        unit's report: nothing in it can be subtracted from the whole."""
        if pathway is None:
            return self
        return dataclasses.replace(
            self, pathway=pathway, intervals=tuple(r for r in self.intervals if r.pathway == pathway),
            cases=tuple(c for c in self.cases if c.pathway == pathway),
            by_unit=tuple(c for c in self.by_unit if c.pathway == pathway))

    @property
    def pathways(self) -> list[str]:
        """The pathways the report has figures for, in its order (by pathway id)."""
        return list(dict.fromkeys([r.pathway for r in self.intervals] + [c.pathway for c in self.cases]))


def _share(numerator: int, base: Count) -> float | None:
    if not isinstance(base, int) or base < MIN_COUNT:
        return None
    return round(numerator / base, 3)


def _published_share(part: Count | None, whole: Count) -> float | None:
    """``part / whole`` where both counts are published and ``whole`` is 5 or more: the rest of the whole is a
    published count as well (a member of the same sum), so the share gives nothing away."""
    return _share(part, whole) if isinstance(part, int) else None


def _measures(data: Collected, pathway: str) -> list[tuple[str, str]]:
    ivs = sorted((iv for (p, _), iv in data.intervals.items() if p == pathway), key=lambda iv: iv.order)
    found = [(m, iv.id) for iv in ivs for m in INTERVAL_MEASURES]
    found += [("opened", ""), ("repeat", ""), ("first", ""), ("coordinator", ""), ("coordinator_on_time", ""),
              ("coordinator_late", ""), ("coordinator_overdue", ""), ("closed", "")]
    found += [("outcome", c) for c in data.outcomes.get(pathway, [])]
    return found


OTHER_KEY = "\x00other"  # the reasons that may not be named, together (no reason text compares equal to it)


def _reason_sub(iv_id: str, reason: str) -> str:
    return f"{iv_id}\x1f{reason}"


def _lattice(data: Collected, counts: Counter[Cell], reasons: dict[Cell, Counter[str]],
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
            # Deviation reasons: each nameable reason of an interval (see ``nameable``) is a count of its own, and
            # the rest together one more ("other"), in every row: suppressed like every other count.
            named = [("reason", _reason_sub(iv_id, r)) for m, iv_id in measures if m == "completed"
                     for r in [*nameable(data, reasons, pathway, iv_id, tertial), OTHER_KEY]]

            def value(measure: str, sub: str, u: str | None, p: str) -> int:
                if measure == "reason":
                    iv_id, r = sub.split("\x1f", 1)
                    given = reasons.get((pathway, "completed", iv_id, u, p), Counter())  # noqa: B023
                    if r != OTHER_KEY:
                        return given.get(r, 0)
                    keep = set(nameable(data, reasons, pathway, iv_id, tertial))  # noqa: B023
                    return sum(n for text, n in given.items() if text not in keep)
                return counts.get((pathway, measure, sub, u, p), 0)  # noqa: B023

            for measure, sub in [*measures, *named]:
                for u in rows:
                    for p in [*months, tertial]:
                        values[(pathway, measure, sub, u, p)] = value(measure, sub, u, p)
                for u in rows:  # the months of a tertial add up to the tertial
                    groups.append(((pathway, measure, sub, u, tertial),
                                   [(pathway, measure, sub, u, m) for m in months]))
                for p in [*months, tertial]:  # the units add up to all units
                    groups.append(((pathway, measure, sub, None, p), [(pathway, measure, sub, u, p) for u in units]))
            for u in rows:  # on time, late and open past the deadline add up to the deadlines of the period
                for p in [*months, tertial]:
                    for m, iv_id in measures:
                        if m == "due":
                            groups.append(((pathway, "due", iv_id, u, p),
                                           [(pathway, o, iv_id, u, p) for o in DEADLINE_OUTCOMES]))
            for u in rows:  # the outcomes add up to the cases closed; first and repeat contacts to the cases
                for p in [*months, tertial]:  # opened; on time and late to the coordinator checkpoints decided
                    groups.append(((pathway, "closed", "", u, p), [(pathway, "outcome", o, u, p) for o in outcomes]))
                    groups.append(((pathway, "opened", "", u, p), [(pathway, m, "", u, p) for m in ("repeat", "first")]))
                    groups.append(((pathway, "coordinator", "", u, p),
                                   [(pathway, m, "", u, p) for m in COORDINATOR_OUTCOMES]))
    return suppress(values, groups)


def nameable(data: Collected, reasons: dict[Cell, Counter[str]], pathway: str, iv_id: str,
             tertial: str) -> list[str]:
    """The deviation reasons of an interval that may be named in a tertial, most given first: given at least 5
    times over all units and in at least 5 different cases (free text could name a person); the rest are only
    counted together, as "other"."""
    given = reasons.get((pathway, "completed", iv_id, None, tertial), Counter())
    return sorted((r for r, n in given.items() if n >= MIN_COUNT and len(data.reason_cases[tertial, r]) >= MIN_COUNT
                   and r != ERASED_REASON),
                  key=lambda r: (-given[r], r))


def _reasons_shown(data: Collected, cell: Cell, reasons: dict[Cell, Counter[str]],
                   shown: dict[Cell, Count]) -> dict[str, Count]:
    """The deviation reasons of one row: each nameable reason's count and the others' together (OTHER), as
    published (suppressed with the rest); a 0 is left out."""
    pathway, _, iv_id, unit, period = cell
    tertial = data.tertial.get(period, period)
    found: dict[str, Count] = {}
    for r in [*nameable(data, reasons, pathway, iv_id, tertial), OTHER_KEY]:
        n = shown.get((pathway, "reason", _reason_sub(iv_id, r), unit, period), 0)
        if n != 0:
            found[OTHER if r == OTHER_KEY else _display(data, tertial, r)] = n
    return found


def _display(data: Collected, tertial: str, key: str) -> str:
    """The way a reason was most often written in the tertial (a reason that reads like the OTHER label is told
    apart)."""
    variants = data.texts.get((tertial, key))
    text = min(variants.items(), key=lambda kv: (-kv[1], kv[0]))[0] if variants else key
    return f"«{text}»" if text == OTHER else text


def not_over(periods: list[str], now: datetime) -> tuple[str, ...]:
    """The periods not over yet at ``now`` (read in Europe/Oslo): the current one, and any after it."""
    today = period_key(now, "month")
    return tuple(p for p in periods if months_of(p)[-1] >= today)


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
    data: Collected
    counts: Counter[Cell]
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
        data, leads, reasons, get = self.data, self.leads, self.reasons, self._get
        wanted = periods_covering(self.start, self.end, period)
        interval_rows: list[IntervalFigures] = []
        case_rows: list[CaseFigures] = []
        by_unit: list[CaseFigures] = []
        pathways = sorted({p for p, _ in data.intervals} | {c[0] for c in self.counts})
        for pathway in pathways:
            ivs = sorted((iv for (p, _), iv in data.intervals.items() if p == pathway), key=lambda iv: iv.order)
            for iv in ivs:
                for p in wanted:
                    cell: Cell = (pathway, "completed", iv.id, unit, p)
                    completed = get(cell)
                    xs = leads.get(cell, [])
                    enough = isinstance(completed, int) and completed >= MIN_COUNT and len(xs) >= MIN_COUNT
                    on_time, late = get((pathway, "on_time", iv.id, unit, p)), get((pathway, "late", iv.id, unit, p))
                    overdue, due = get((pathway, "overdue", iv.id, unit, p)), get((pathway, "due", iv.id, unit, p))
                    interval_rows.append(IntervalFigures(
                        pathway=pathway, checkpoint=iv.checkpoint, interval=iv.name, deadline=iv.deadline, period=p,
                        unit=unit, completed=completed, within_deadline_share=_published_share(on_time, due),
                        median_hours=round(percentile(xs, 0.5), 1) if enough else None,
                        p90_hours=round(percentile(xs, 0.9), 1) if enough else None,
                        overdue_now=overdue, deviation_reasons=_reasons_shown(data, cell, reasons, self.shown),
                        due=due, done_on_time=on_time, done_late=late,
                    ))
            case_rows += [self._case_figures(pathway, p, unit) for p in wanted]
            if unit is None:  # every unit side by side (with figures in the tertial): each unit's own report's
                active = {(c[3], data.tertial.get(c[4], c[4])) for c in self.counts if c[0] == pathway}
                by_unit += [self._case_figures(pathway, p, u) for u in self.units for p in wanted
                            if (u, data.tertial.get(p, p)) in active]
        return Report(period=period, start=self.start, end=self.end, unit=unit, generated_at=self.now,
                      periods=tuple(wanted), intervals=tuple(interval_rows), cases=tuple(case_rows),
                      by_unit=tuple(by_unit), partial=not_over(wanted, self.now))

    def _case_figures(self, pathway: str, p: str, unit: str | None) -> CaseFigures:
        get, data = self._get, self.data

        def case(measure: str, sub: str = "") -> Count:
            return get((pathway, measure, sub, unit, p))

        closed, opened, repeat = case("closed"), case("opened"), case("repeat")
        outcomes = {o: case("outcome", o) for o in data.outcomes.get(pathway, [])}
        returned = outcomes.get(RETURNED_TO_ABUSER)
        decided = case("coordinator")
        return CaseFigures(
            pathway=pathway, period=p, unit=unit, opened=opened, coordinator_decided=decided,
            coordinator_within_share=_published_share(case("coordinator_on_time"), decided),
            closed=closed, outcomes=outcomes,
            returned_to_abuser_share=_published_share(returned, closed),
            repeat_contact=repeat, repeat_contact_share=_published_share(repeat, opened),
        )

    def reports_for_all_units(self, period: Period) -> dict[str | None, Report]:
        """The report of every unit with figures, and of all units together (key ``None``)."""
        return {unit: self.report(period, unit) for unit in [*self.units, None]}


def breakdown(*, engine: sa.Engine, resolve: Resolver, start: date, end: date, now: datetime,
              keys: KeyRing | None = None) -> Breakdown:
    """Collect, roll up and suppress the whole breakdown of every tertial overlapping ``start``..``end`` (``keys``
    opens the deviation reasons: ``collect``)."""
    now = _checked_now(now)
    tertials = periods_covering(start, end, "tertial")
    data = collect(engine=engine, resolve=resolve, tertials=tertials, now=now, keys=keys)
    counts, leads, reasons = data.rolled()
    shown = _lattice(data, counts, reasons, tertials)
    return Breakdown(start=start, end=end, now=now, data=data, counts=counts, leads=leads,
                     reasons=reasons, shown=shown)


def reports_for_all_units(*, engine: sa.Engine, resolve: Resolver, period: Period, start: date, end: date,
                          now: datetime, keys: KeyRing | None = None) -> dict[str | None, Report]:
    """The report of every unit with figures and of all units together (key ``None``), from one breakdown:
    each is the same as ``timeliness`` gives for that unit."""
    _checked_period(period)
    return breakdown(engine=engine, resolve=resolve, start=start, end=end, now=now,
                     keys=keys).reports_for_all_units(period)


def timeliness(
    *,
    engine: sa.Engine,
    resolve: Resolver,
    period: Period,
    start: date,
    end: date,
    unit: str | None = None,
    now: datetime,
    keys: KeyRing | None = None,
) -> Report:
    """Timeliness figures per checkpoint interval and per period (every period overlapping ``start``..``end``,
    in full), for ``unit`` or, with ``unit=None``, all units together. Counts below 5 are suppressed as described
    in the module's docstring. ``resolve(pathway_id, version)`` gives a definition (``DefinitionCatalog.resolve``)."""
    _checked_period(period)
    _checked_now(now)
    periods_covering(start, end, period)  # refuse an end before start before touching the database
    return breakdown(engine=engine, resolve=resolve, start=start, end=end, now=now, keys=keys).report(period, unit)

