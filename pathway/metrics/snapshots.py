"""The report's figures kept per tertial in ``report_snapshot``, so that a report for any span answers at once.

Every report is cut from whole tertials: small-count suppression is decided per tertial (its months and itself,
every unit and all units: the sums it protects never reach across a tertial), and so is which deviation reasons may
be named. A tertial's figures for every unit, month and the tertial itself are therefore one *block*: computed once
from the tertial's breakdown (``breakdown``), stored already suppressed (aggregates only: nothing a live report
would not show), and any span is the blocks of the tertials it touches, read by key (one row per tertial for one
unit, however many units there are). ``timeliness`` over the same span gives the same report.

The scheduler keeps the blocks fresh (``refresh_snapshots``): the current tertial at every run (what is overdue changes
with the clock), and each earlier one of the last three years when it is older than a day (a past tertial changes
only where a late completion or a correction is recorded after the fact). A block missing or stale when a manager
asks is computed then (and not stored: only the job writes blocks).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pathway.crypto import KeyRing
from pathway.errors import ConstraintViolated
from pathway.metrics.collect import Resolver
from pathway.metrics.periods import Period, default_span, period_dates, periods_covering
from pathway.metrics.report import CaseFigures, IntervalFigures, Report, breakdown, not_over
from pathway.store.tables import snapshot_t, user_t

log = logging.getLogger("forlop.snapshots")

ALL_UNITS = "*"
EVERY_UNIT = "#units"  # the block of each unit's case figures, for all units' comparison per unit
BLOCK = "tertial"  # ``report_snapshot.period`` of a block: its key is the tertial's first and last day
PAST_MAX_AGE = timedelta(days=1)  # how old a block of a tertial that is over may be
YEARS_KEPT_FRESH = 3  # the longest span a manager may ask for


def _iso(value: Any) -> str:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _plain(rows: Iterable[Any]) -> list[dict[str, Any]]:
    return [json.loads(json.dumps(dataclasses.asdict(r), default=_iso)) for r in rows]


def to_json(report: Report) -> dict[str, Any]:
    """A report as JSON-ready data (``dataclasses.asdict``, dates as ISO strings)."""
    return json.loads(json.dumps(dataclasses.asdict(report), default=_iso))


def _bounds(tertial: str) -> tuple[date, date]:
    first, after = period_dates(tertial)
    return first, after - timedelta(days=1)


def compute_blocks(*, engine: sa.Engine, resolve: Resolver, tertial: str, now: datetime,
                   units: Iterable[str] = (), keys: KeyRing | None = None) -> list[dict[str, Any]]:
    """The blocks of one tertial (rows of ``report_snapshot``): for every unit with figures or staff (and
    ``units``), for all units, and each unit's case figures side by side."""
    first, last = _bounds(tertial)
    whole = breakdown(engine=engine, resolve=resolve, start=first, end=last, now=now, keys=keys)
    rows: list[dict[str, Any]] = []
    for unit in [*sorted(set(units) | set(whole.units) | _staffed(engine)), None]:
        month, whole_tertial = whole.report("month", unit), whole.report("tertial", unit)
        rows.append({"unit": ALL_UNITS if unit is None else unit, "report": {
            "intervals": _plain([*month.intervals, *whole_tertial.intervals]),
            "cases": _plain([*month.cases, *whole_tertial.cases])}})
        if unit is None:
            rows.append({"unit": EVERY_UNIT, "report": {
                "intervals": [], "cases": _plain([*month.by_unit, *whole_tertial.by_unit])}})
    for row in rows:
        row.update(period=BLOCK, period_start=first, period_end=last, computed_at=whole.now)
    return rows


def write_blocks(engine: sa.Engine, rows: Sequence[dict[str, Any]]) -> int:
    """Store the blocks of a tertial in one transaction, in place of its earlier ones. Returns how many were
    written; 0 when another scheduler wrote the same at the same moment (its figures are as good)."""
    if not rows:
        return 0
    starts = {row["period_start"] for row in rows}
    try:
        with engine.begin() as conn:
            conn.execute(snapshot_t.delete().where(snapshot_t.c.period == BLOCK,
                                                   snapshot_t.c.period_start.in_(starts)))
            conn.execute(snapshot_t.insert(), list(rows))
    except ConstraintViolated:  # the same block's key, written by the other
        log.info("report blocks: written by another scheduler at the same time")
        return 0
    return len(rows)


def _fresh_since(tertial: str, now: datetime, max_age: timedelta) -> datetime:
    """The oldest a block of ``tertial`` may have been computed: the current tertial's (and the one just over, whose
    open steps are still being done) within ``max_age``, an earlier one's within a day."""
    today = default_span(now)[1]  # the day in Europe/Oslo
    recent = periods_covering(today - timedelta(days=31), today, "tertial")
    return now - (max_age if tertial in recent else max(PAST_MAX_AGE, max_age))


def _staffed(engine: sa.Engine) -> set[str]:
    """Units with staff: a unit of a manager without figures yet gets its (empty) blocks too."""
    with engine.connect() as conn:
        return set(conn.execute(sa.select(user_t.c.unit).where(user_t.c.unit.is_not(None)).distinct()).scalars())


def refresh_snapshots(*, engine: sa.Engine, resolve: Resolver, now: datetime, keys: KeyRing | None = None) -> int:
    """Compute and store the blocks of the current tertial (and of the one just over), and of every earlier tertial
    of the last three years that is missing or older than a day. Returns the number of rows written."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime: now must carry a time zone")
    today = default_span(now)[1]
    tertials = periods_covering(today.replace(year=today.year - YEARS_KEPT_FRESH, day=1), today, "tertial")
    with engine.connect() as conn:
        have = dict(conn.execute(sa.select(snapshot_t.c.period_start, sa.func.min(snapshot_t.c.computed_at))
                                 .where(snapshot_t.c.period == BLOCK).group_by(snapshot_t.c.period_start)).all())
    written = 0
    for tertial in reversed(tertials):  # the current one first: it is the one managers open
        computed_at = have.get(_bounds(tertial)[0])
        if computed_at is None or computed_at < _fresh_since(tertial, now, timedelta(0)):
            written += write_blocks(engine, compute_blocks(engine=engine, resolve=resolve, tertial=tertial, now=now,
                                                           keys=keys))
    return written


def _read_blocks(engine: sa.Engine, tertials: Sequence[str],
                 keys: Sequence[str]) -> dict[str, dict[str, tuple[datetime, dict[str, Any]]]]:
    """The stored blocks of ``keys`` (a unit, ALL_UNITS, EVERY_UNIT) for ``tertials``, by key and tertial, in one
    read (one writer's rows, never two computations mixed)."""
    starts = {_bounds(t)[0]: t for t in tertials}
    query = sa.select(snapshot_t.c.unit, snapshot_t.c.period_start, snapshot_t.c.computed_at,
                      snapshot_t.c.report).where(snapshot_t.c.period == BLOCK, snapshot_t.c.unit.in_(list(keys)),
                                                 snapshot_t.c.period_start.in_(list(starts)))
    found: dict[str, dict[str, tuple[datetime, dict[str, Any]]]] = {key: {} for key in keys}
    with engine.connect() as conn:
        for row in conn.execute(query):
            found[row.unit][starts[row.period_start]] = (row.computed_at, row.report)
    return found


def blocks_report(*, engine: sa.Engine, resolve: Resolver, period: Period, start: date, end: date,
                  unit: str | None, now: datetime, max_age: timedelta, keys: KeyRing | None = None) -> Report:
    """The report of ``unit`` (``None``: all units) by ``period`` over ``start``..``end``, from the blocks of the
    tertials it touches; a block missing or older than it may be is computed now."""
    tertials = periods_covering(start, end, "tertial")
    names = [ALL_UNITS if unit is None else unit, *([EVERY_UNIT] if unit is None else [])]
    found = _read_blocks(engine, tertials, names)
    for tertial in tertials:
        since = _fresh_since(tertial, now, max_age)
        if any(tertial not in found[k] or found[k][tertial][0] < since for k in names):
            # Computed for this answer and not stored: only the scheduler's job writes blocks, so a page a manager
            # reloads while the job is off shows what was just recorded, and a read never writes.
            rows = compute_blocks(engine=engine, resolve=resolve, tertial=tertial, now=now,
                                  units=() if unit is None else (unit,), keys=keys)
            for row in rows:
                if row["unit"] in found:
                    found[row["unit"]][tertial] = (row["computed_at"], row["report"])
    wanted = periods_covering(start, end, period)
    return _assemble(period, start, end, unit, wanted, [found[k] for k in names], tertials, now)


def _assemble(period: Period, start: date, end: date, unit: str | None, wanted: list[str],
              blocks: list[dict[str, tuple[datetime, dict[str, Any]]]], tertials: list[str], now: datetime) -> Report:
    """A report from its blocks, its rows in the order a breakdown gives them: by pathway, interval, period."""
    shown = set(wanted)
    rank = {p: i for i, p in enumerate(wanted)}
    own = blocks[0]
    intervals = [r for t in tertials for r in own[t][1]["intervals"] if r["period"] in shown]
    order: dict[tuple[str, str], int] = {}
    for r in intervals:
        order.setdefault((r["pathway"], r["interval"]), len(order))
    intervals.sort(key=lambda r: (r["pathway"], order[r["pathway"], r["interval"]], rank[r["period"]]))

    def cases(block: dict[str, tuple[datetime, dict[str, Any]]]) -> list[dict[str, Any]]:
        found = [c for t in tertials for c in block[t][1]["cases"] if c["period"] in shown]
        return sorted(found, key=lambda c: (c["pathway"], c["unit"] or "", rank[c["period"]]))

    return Report(
        period=period, start=start, end=end, unit=unit,
        generated_at=min(own[t][0] for t in tertials), periods=tuple(wanted),
        intervals=tuple(IntervalFigures(**r) for r in intervals),
        cases=tuple(CaseFigures(**c) for c in cases(own)),
        by_unit=tuple(CaseFigures(**c) for c in cases(blocks[1])) if len(blocks) > 1 else (),
        partial=not_over(wanted, now),
    )
