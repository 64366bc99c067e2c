"""Lead times: hours from a checkpoint's anchor to its completion with paused time left out, and their
percentiles (interpolated linearly between the nearest ranks, as PostgreSQL's ``percentile_cont``)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache

from pathway.calendar import Unit, shift
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


def lead_hours(anchor_at: datetime, due_at: datetime, ended_at: datetime, offset: Offset) -> float:
    """Hours from anchor to completion with paused time left out: the time the deadline was moved by pauses
    (``due_at`` minus the definition's deadline) is taken off."""
    base_due = _shift(anchor_at, offset.amount, offset.unit)
    paused = max(due_at - base_due, timedelta(0))
    return (ended_at - anchor_at - paused).total_seconds() / 3600
