"""The managers' timeliness report as the API and the pages read it: one read, with one rule for what a manager
may see and when the background snapshot answers instead of a live computation."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Literal

from pathway.case import EARLIEST, LATEST
from pathway.metrics.periods import Period, default_span
from pathway.metrics.report import Report, timeliness
from pathway.metrics.snapshots import read_snapshot

if TYPE_CHECKING:
    from pathway.accounts import User
    from pathway.bootstrap import Forlop

Scope = Literal["unit", "all"]


class SpanRefused(ValueError):
    """The span asked for cannot be reported on; the message says why (it names no value but the limits)."""


def read_report(core: Forlop, user: User, period: Period, start: date | None, end: date | None,
                scope: Scope) -> Report:
    """The report of the manager's own unit (``scope="unit"``) or of every unit together, by ``period``, over
    ``start``..``end`` (by default the last 365 days, ``default_span``). The default report is answered from its
    background snapshot while that is fresh; any other is computed now. Raises ``SpanRefused``."""
    now = datetime.now(timezone.utc)
    default = start is None and end is None
    end = end or default_span(now)[1]
    if not EARLIEST.date() <= (start or end) or end >= LATEST.date():  # year 1 or 9999 overflows date arithmetic
        raise SpanRefused(f"start and end must lie between {EARLIEST.year} and {LATEST.year}")
    start = start or default_span(end)[0]
    if start > end or (end - start).days > 3 * 366:
        raise SpanRefused("start must come before end, and the span be at most three years")
    # A manager sees their own unit, or every unit together; never another unit on its own.
    unit = user.unit if scope == "unit" and user.unit else None
    max_age = core.settings.report_snapshot_max_age
    if default and max_age is not None:
        # The default report is computed in the background (the national breakdown takes long); its
        # generated_at says when. A missing or stale snapshot (scheduler off or behind) is computed live.
        snapshot = read_snapshot(core.engine, period=period, start=start, end=end, unit=unit,
                                 not_before=now - max_age)
        if snapshot is not None:
            return snapshot
    return timeliness(engine=core.engine, resolve=core.catalog.resolve, period=period, start=start, end=end,
                      unit=unit, now=now)
