"""Periods: a month ("2026-11") or a tertial ("2026-T3": January–April is T1, May–August T2, September–December
T3), read in Europe/Oslo, and the span a report covers when none is asked for."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Literal

from pathway.calendar import OSLO

Period = Literal["month", "tertial"]
DEFAULT_MONTHS = 12  # full months before the current one in the report a manager opens


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


def period_parts(key: str) -> tuple[int, int, int]:
    """(year, first month, number of months) of a period key: ``"2026-11"`` is (2026, 11, 1), ``"2026-T3"`` is
    (2026, 9, 4). The one reading of a key, for the figures and for their words; raises ``ValueError``."""
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
    year, month, n = period_parts(key)
    end_year, end_month = _add_months(year, month, n)
    return date(year, month, 1), date(end_year, end_month, 1)


def period_bounds(key: str) -> tuple[datetime, datetime]:
    """A period as UTC instants ``[start, end)``: Oslo midnight at its first day and at the first day after it."""
    first, after = period_dates(key)
    return (datetime.combine(first, time(), tzinfo=OSLO).astimezone(timezone.utc),
            datetime.combine(after, time(), tzinfo=OSLO).astimezone(timezone.utc))


def months_of(key: str) -> list[str]:
    """The months of a period (a month is its own only month)."""
    year, month, n = period_parts(key)
    return [f"{y:04d}-{m:02d}" for y, m in (_add_months(year, month, i) for i in range(n))]


def periods_covering(start: date, end: date, period: Period) -> list[str]:
    """Every period that overlaps the days ``start``..``end`` (both included), oldest first."""
    if end < start:
        raise ValueError("end lies before start")
    keys: list[str] = []
    day = start.replace(day=1)
    while day <= end:
        key = period_key(day, period)
        if not keys or keys[-1] != key:
            keys.append(key)
        day = period_dates(key)[1]
    return keys


def default_span(today: datetime | date) -> tuple[date, date]:
    """The span of the report when none is asked for: the last 12 full months and the current month so far, up to
    ``today`` (a moment is read in Europe/Oslo: at 00:30 on 1 January in Oslo the report reaches into January,
    though UTC is still in December)."""
    day = _local_date(today)
    year, month = _add_months(day.year, day.month, -DEFAULT_MONTHS)
    return date(year, month, 1), day

