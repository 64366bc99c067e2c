"""Overdue, due soon and due this week as SQL over the cases' next deadline: the domain's ``deadline_status``, and
the end of the week in Oslo, for the case list."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import sqlalchemy as sa

from pathway.calendar import OSLO
from pathway.case.values import DUE_SOON, DeadlineStatus, deadline_status
from pathway.store.tables import case_t

__all__ = ["DUE_SOON", "DeadlineStatus", "deadline_status", "due_before_clause", "due_soon_clause", "overdue_clause",
           "week_end"]

# The same rule as SQL over the cases' next deadline. Each clause is true or false, never NULL (a case without a
# deadline is neither, so that NOT of a clause keeps it: overdue=false and overdue=true together are every case).


def _open_deadline() -> sa.ColumnElement[bool]:
    return sa.and_(case_t.c.next_due_at.is_not(None), case_t.c.closed_at.is_(None))


def overdue_clause(now: datetime) -> sa.ColumnElement[bool]:
    """A case is overdue: ``deadline_status`` of its next deadline is "overdue"."""
    return sa.and_(_open_deadline(), case_t.c.next_due_at < now)


def due_soon_clause(now: datetime) -> sa.ColumnElement[bool]:
    """A case is due soon: ``deadline_status`` of its next deadline is "due_soon"."""
    return sa.and_(_open_deadline(), case_t.c.next_due_at >= now, case_t.c.next_due_at < now + DUE_SOON)


def due_before_clause(before: datetime) -> sa.ColumnElement[bool]:
    """A case's next deadline falls before ``before`` (those already passed too: they are due, and more)."""
    return sa.and_(_open_deadline(), case_t.c.next_due_at < before)


def week_end(now: datetime) -> datetime:
    """The end of ``now``'s ISO week in Oslo (Monday 00:00 after it, local time), in UTC. Midnight is never in a
    daylight-saving gap in Oslo (the clocks change at 02:00 and 03:00), so the wall time always exists."""
    day = now.astimezone(OSLO).date()
    monday = day + timedelta(days=7 - day.weekday())
    return datetime.combine(monday, time(0), tzinfo=OSLO).astimezone(timezone.utc)
