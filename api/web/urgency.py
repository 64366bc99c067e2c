"""How late or how soon a deadline is, in words ("3 dager over frist", "frist i dag, om 5 timer", "frist om 2
dager"): the one place the pages say it. The API gives the deadline itself (``due_at``); a page words it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from api.web.render import OSLO

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def how_late(due_at: datetime, now: datetime, t: Callable[[str], str]) -> str:
    """Hours under a day (either side); from a day on, days as the calendar in Oslo counts them (a deadline on
    Monday is "3 days overdue" all Thursday, also across a change of daylight-saving time). A deadline later
    today says so. ``t`` is the page's translator."""
    gap = due_at.astimezone(timezone.utc) - now.astimezone(timezone.utc)  # elapsed time, not wall-clock time
    days = abs((due_at.astimezone(OSLO).date() - now.astimezone(OSLO).date()).days)
    if gap < timedelta(0):
        if -gap >= DAY:
            return _count(days, t("1 day overdue"), t("{n} days overdue"))
        if -gap >= HOUR:
            return _count(-gap // HOUR, t("1 hour overdue"), t("{n} hours overdue"))
        return t("less than an hour overdue")
    if gap >= DAY:
        return _count(days, t("due in 1 day"), t("due in {n} days"))
    if days == 0:
        if gap < HOUR:
            return t("due today, in less than an hour")
        return _count(gap // HOUR, t("due today, in 1 hour"), t("due today, in {n} hours"))
    if gap < HOUR:
        return t("due in less than an hour")
    return _count(gap // HOUR, t("due in 1 hour"), t("due in {n} hours"))


def _count(n: int, one: str, many: str) -> str:
    return one if n == 1 else many.format(n=n)
