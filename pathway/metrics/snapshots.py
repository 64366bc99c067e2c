"""Timeliness reports computed in the background and kept in ``report_snapshot``.

The report suppresses small counts over the whole national breakdown (every unit, every period), which takes
long at national size. The scheduler therefore computes the default report (the last 365 days, by month and by
tertial) for every unit and all units from one breakdown, and the API answers from it while it is fresh. Only
aggregates are stored, already suppressed: a snapshot holds nothing a live report would not show.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from pathway.errors import ConstraintViolated
from pathway.metrics.collect import Resolver
from pathway.metrics.periods import Period, default_span
from pathway.metrics.report import CaseFigures, IntervalFigures, Report, breakdown
from pathway.store.tables import snapshot_t, user_t

log = logging.getLogger("forlop.snapshots")

ALL_UNITS = "*"
PERIODS: tuple[Period, ...] = ("month", "tertial")


def _iso(value: Any) -> str:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def to_json(report: Report) -> dict[str, Any]:
    """A report as JSON-ready data (``dataclasses.asdict``, dates as ISO strings)."""
    return json.loads(json.dumps(dataclasses.asdict(report), default=_iso))


def from_json(data: dict[str, Any], *, generated_at: datetime) -> Report:
    """A report back from ``to_json``, its rows as dataclasses again (the web page reads their attributes)."""
    return Report(
        period=data["period"], start=date.fromisoformat(data["start"]), end=date.fromisoformat(data["end"]),
        unit=data["unit"], generated_at=generated_at, periods=tuple(data["periods"]),
        intervals=tuple(IntervalFigures(**r) for r in data["intervals"]),
        cases=tuple(CaseFigures(**c) for c in data["cases"]), partial=tuple(data.get("partial", ())),
        by_unit=tuple(CaseFigures(**c) for c in data.get("by_unit", ())),
    )


def write_snapshots(engine: sa.Engine, reports: Iterable[Report], *, computed_at: datetime) -> int:
    """Store ``reports`` in one transaction, in place of every earlier snapshot of their period kinds (the
    default span moves with the day, so older spans are stale). Returns how many were written; 0 when another
    scheduler wrote the same snapshots at the same moment (its figures are as good)."""
    rows = [{"period": r.period, "period_start": r.start, "period_end": r.end,
             "unit": ALL_UNITS if r.unit is None else r.unit, "computed_at": computed_at, "report": to_json(r)}
            for r in reports]
    if not rows:
        return 0
    try:
        with engine.begin() as conn:
            conn.execute(snapshot_t.delete().where(snapshot_t.c.period.in_({row["period"] for row in rows})))
            conn.execute(snapshot_t.insert(), rows)
    except ConstraintViolated:  # the same snapshot's key, written by the other
        log.info("report snapshots: written by another scheduler at the same time")
        return 0
    return len(rows)


def read_snapshot(engine: sa.Engine, *, period: str, start: date, end: date, unit: str | None,
                  not_before: datetime) -> Report | None:
    """The stored report for this key if it was computed at ``not_before`` or later; else ``None``."""
    query = sa.select(snapshot_t.c.computed_at, snapshot_t.c.report).where(
        snapshot_t.c.period == period, snapshot_t.c.period_start == start, snapshot_t.c.period_end == end,
        snapshot_t.c.unit == (ALL_UNITS if unit is None else unit), snapshot_t.c.computed_at >= not_before)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else from_json(row.report, generated_at=row.computed_at)


def refresh_snapshots(*, engine: sa.Engine, resolve: Resolver, now: datetime) -> int:
    """Compute the default report (``default_span``) of every unit (with figures, or with staff) and of
    all units, by month and by tertial, from one breakdown, and store it. Returns the number of snapshots
    written."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime: now must carry a time zone")
    start, end = default_span(now)  # the API's default, on the same day
    whole = breakdown(engine=engine, resolve=resolve, start=start, end=end, now=now)
    with engine.connect() as conn:
        # A unit of a manager without figures yet gets its (empty) report too, rather than a live one.
        staffed = set(conn.execute(sa.select(user_t.c.unit).where(user_t.c.unit.is_not(None)).distinct()).scalars())
    units = [*sorted(staffed | set(whole.units)), None]
    reports = [whole.report(period, unit) for period in PERIODS for unit in units]
    return write_snapshots(engine, reports, computed_at=whole.now)
