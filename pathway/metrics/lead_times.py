"""Lead times: hours from a checkpoint's anchor to its completion with paused time left out, and their
percentiles (interpolated linearly between the nearest ranks, as PostgreSQL's ``percentile_cont``)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache

from pathway.calendar import Unit, shift, working_time_between
from pathway.definition import Offset


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


def lead_hours(anchor_at: datetime, due_at: datetime, ended_at: datetime, offset: Offset, *,
               working_time: bool) -> float:
    """Hours from anchor to completion with paused time left out: the time the deadline was moved by pauses (from
    the definition's deadline to ``due_at``) is taken off. A pause recorded with the working-time rule
    (``working_time``) moved a deadline in working days by its paused working time, added in working time: that is
    what is taken off, counted in working time as ``pathway.case.deadlines`` added it (a weekend the deadline moved
    across is not paused time); any other move is counted in calendar time."""
    base_due = _shift(anchor_at, offset.amount, offset.unit)
    if working_time and offset.unit is Unit.WORKING_DAYS:
        paused = working_time_between(base_due, due_at)
    else:
        paused = max(due_at - base_due, timedelta(0))
    return (ended_at - anchor_at - paused).total_seconds() / 3600
