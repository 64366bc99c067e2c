"""Lead times: hours from a checkpoint's anchor to its completion with paused time left out, whether done on time,
and percentiles (interpolated linearly between the nearest ranks, as PostgreSQL's ``percentile_cont``).

Paused time is read from the case's pauses themselves (each from when it took effect to the resume, or open when
there is none yet), not from how far a resume moved a deadline: a step completed while the clock stands still is
then measured like any other, and a resume recorded later changes nothing about it (a past period's figures stay
as they were)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

Pause = tuple[datetime, datetime | None]  # when the clock stopped, and when it ran again (None: not yet)


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


def paused_between(start: datetime, end: datetime, pauses: Sequence[Pause]) -> timedelta:
    """The time from ``start`` to ``end`` the clock stood still (calendar time: a weekend inside a pause is paused
    time too, also for a deadline in working days)."""
    total = timedelta(0)
    for stopped, ran in pauses:
        lo, hi = max(stopped, start), min(end if ran is None else ran, end)
        if hi > lo:
            total += hi - lo
    return total


def lead_hours(anchor_at: datetime, ended_at: datetime, pauses: Sequence[Pause] = ()) -> float:
    """Hours from anchor to completion, the time the clock stood still in between left out."""
    return (ended_at - anchor_at - paused_between(anchor_at, ended_at, pauses)).total_seconds() / 3600


def done_on_time(due_at: datetime, ended_at: datetime, pauses: Sequence[Pause] = ()) -> bool:
    """Whether a step was done by its deadline: by ``due_at`` (which a resume moved by the paused time), or while
    the clock stood still, when it stopped before the deadline had passed (the deadline is moved only when the
    clock runs again, and a step done before that was never late)."""
    if ended_at <= due_at:
        return True
    return any(stopped < due_at and stopped <= ended_at and (ran is None or ended_at < ran) for stopped, ran in pauses)
