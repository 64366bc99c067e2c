"""Deadline arithmetic for care pathways: hours, calendar days and Norwegian working days.

Pure domain code: only the standard library and ``holidays``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

__all__ = ["OSLO", "Unit", "add_working_time", "is_working_day", "shift", "working_days_between", "working_time_between"]

OSLO: ZoneInfo = ZoneInfo("Europe/Oslo")


class Unit(StrEnum):
    HOURS = "hours"
    DAYS = "days"
    WORKING_DAYS = "working_days"


@lru_cache(maxsize=64)
def _public_holidays(year: int) -> frozenset[date]:
    # include_sundays=False: by default the Norway calendar lists every Sunday as a
    # holiday; weekends are handled by weekday() instead, so keep only the real ones.
    return frozenset(holidays.country_holidays("NO", years=year, include_sundays=False))


def is_working_day(day: date) -> bool:
    """Monday–Friday and not a Norwegian public holiday (24 Dec / 31 Dec are working days)."""
    return day.weekday() < 5 and day not in _public_holidays(day.year)


def _at_local(day: date, wall: time) -> datetime:
    # fold=0 picks the first occurrence of an ambiguous autumn time. For a wall time
    # inside the spring gap, zoneinfo applies the pre-transition offset (+01:00), so
    # the UTC round-trip lands one hour later (02:30 -> 03:30 CEST): "shift by the gap".
    return datetime.combine(day, wall.replace(fold=0), tzinfo=OSLO).astimezone(timezone.utc)


def _require_aware(*moments: datetime) -> None:
    # A naive datetime would silently be read in the server's local zone.
    if any(m.tzinfo is None or m.utcoffset() is None for m in moments):
        raise ValueError("naive datetime: a timezone-aware datetime is required")


def shift(start: datetime, amount: int, unit: Unit) -> datetime:
    """Move ``start`` by ``amount`` units and return an aware UTC datetime.

    - HOURS: elapsed real time; 24 h across a DST change is 24 real hours.
    - DAYS: calendar days in Europe/Oslo, keeping the local wall-clock time
      (so +1 day is 23 real hours over the spring change and 25 over the autumn one).
    - WORKING_DAYS: count only working days (see ``is_working_day``) on Oslo local
      dates, keeping the wall-clock time; negative counts backwards, 0 is a no-op.
      Saturday 10:00 + 1 working day is Monday 10:00.
    Non-existent wall times (spring gap) move forward by the gap (02:30 -> 03:30);
    ambiguous ones (autumn) take the first occurrence. Naive ``start`` or an unknown
    unit raise ``ValueError``.
    """
    _require_aware(start)
    unit = Unit(unit)  # raises ValueError for unknown units, also accepts plain strings
    if unit is Unit.HOURS:
        # Convert first: aware + timedelta is wall-clock arithmetic within one tzinfo.
        return start.astimezone(timezone.utc) + timedelta(hours=amount)
    local = start.astimezone(OSLO)
    if unit is Unit.DAYS:
        return _at_local(local.date() + timedelta(days=amount), local.time())
    if amount == 0:
        return start.astimezone(timezone.utc)
    return _at_local(_working_days_from(local.date(), amount), local.time())


@lru_cache(maxsize=4096)
def _working_days_from(day: date, amount: int) -> date:
    # The date ``amount`` working days from ``day``: remembered, as the reminder scan asks it for every rung of every
    # due step, and the steps of a day share their dates.
    step = timedelta(days=1 if amount > 0 else -1)
    remaining = abs(amount)
    while remaining:
        day += step
        if is_working_day(day):
            remaining -= 1
    return day


def working_days_between(start: datetime, end: datetime) -> int:
    """Working days d with start_local.date() < d <= end_local.date(); negative if end < start."""
    _require_aware(start, end)
    first, last = start.astimezone(OSLO).date(), end.astimezone(OSLO).date()
    if last < first:
        return -working_days_between(end, start)
    return sum(is_working_day(first + timedelta(days=i)) for i in range(1, (last - first).days + 1))


_DAY = timedelta(days=1)


def end_of_day(moment: datetime) -> datetime:
    """The end of ``moment``'s day in Oslo, in UTC: what "the same day" gives until. 23:59 local, so that a page
    says the day it is (a deadline at the next midnight reads as tomorrow's 00:00)."""
    _require_aware(moment)
    return _at_local(moment.astimezone(OSLO).date(), time(23, 59))


def _wall(moment: datetime) -> tuple[date, timedelta]:
    """The Oslo local date of ``moment`` and its wall-clock time as the time since that date's midnight."""
    local = moment.astimezone(OSLO)
    return local.date(), timedelta(hours=local.hour, minutes=local.minute, seconds=local.second,
                                   microseconds=local.microsecond)


def working_time_between(start: datetime, end: datetime) -> timedelta:
    """The part of [start, end) that lies on working days (Oslo wall clock, whole days); zero if end <= start.

    Norway's clocks change on Sunday nights, so on a working day wall-clock time is real time."""
    _require_aware(start, end)
    if end <= start:
        return timedelta(0)
    (first, since), (last, until) = _wall(start), _wall(end)
    if first == last:
        return until - since if is_working_day(first) else timedelta(0)
    total = (_DAY - since) if is_working_day(first) else timedelta(0)
    total += _DAY * sum(is_working_day(first + timedelta(days=i)) for i in range(1, (last - first).days))
    return total + (until if is_working_day(last) else timedelta(0))


def add_working_time(start: datetime, amount: timedelta) -> datetime:
    """``start`` moved forward by ``amount`` of working-day time (the inverse of ``working_time_between``): time on
    weekends and public holidays does not count, so the result lies on a working day, keeping the wall clock.
    Time that uses up a working day exactly goes on to the next working day's midnight. Returns UTC."""
    _require_aware(start)
    if amount <= timedelta(0):
        return start.astimezone(timezone.utc)
    day, since = _wall(start)
    if not is_working_day(day):
        since = timedelta(0)
        day = _next_working_day(day)
    remaining = amount
    while remaining >= _DAY - since:
        remaining -= _DAY - since
        day, since = _next_working_day(day), timedelta(0)
    wall = since + remaining
    return _at_local(day, (datetime.min + wall).time())


def _next_working_day(day: date) -> date:
    day += _DAY
    while not is_working_day(day):
        day += _DAY
    return day
