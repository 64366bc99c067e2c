"""The managers' timeliness report as the API and the pages read it: one read, with one rule for what a manager
may see, answered from the stored blocks of its tertials."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Literal

from pathway.case import EARLIEST, LATEST
from pathway.metrics.periods import Period, default_span
from pathway.metrics.report import Report, timeliness
from pathway.metrics.snapshots import blocks_report

if TYPE_CHECKING:
    from pathway.accounts import User
    from pathway.bootstrap import Forlop

Scope = Literal["unit", "all"]


class SpanRefused(ValueError):
    """The span asked for cannot be reported on; the message says why (it names no value but the limits)."""


def read_report(core: Forlop, user: User, period: Period, start: date | None, end: date | None,
                scope: Scope) -> Report:
    """The report of the manager's own unit (``scope="unit"``) or of every unit together, by ``period``, over
    ``start``..``end`` (by default the last 12 full months and the current one, ``default_span``), from the
    stored blocks of the tertials it touches (``snapshots``; a missing or stale one is computed then). Raises
    ``SpanRefused``."""
    now = datetime.now(timezone.utc)
    end = end or default_span(now)[1]
    if not EARLIEST.date() <= (start or end) or end >= LATEST.date():  # year 1 or 9999 overflows date arithmetic
        raise SpanRefused(f"start and end must lie between {EARLIEST.year} and {LATEST.year}")
    start = start or default_span(end)[0]
    if start > end or (end - start).days > 3 * 366:
        raise SpanRefused("start must come before end, and the span be at most three years")
    # A manager sees their own unit's report, or every unit's together with each unit beside the others.
    unit = user.unit if scope == "unit" and user.unit else None
    max_age = core.settings.report_snapshot_max_age
    if max_age is None:  # blocks off: every report is computed now
        return timeliness(engine=core.engine, resolve=core.catalog.resolve, period=period, start=start, end=end,
                          unit=unit, now=now)
    return blocks_report(engine=core.engine, resolve=core.catalog.resolve, period=period, start=start, end=end,
                         unit=unit, now=now, max_age=max_age)
