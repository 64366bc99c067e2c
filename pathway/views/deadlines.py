"""Overdue and due soon: the one rule, for a step, a case and the case list's SQL alike."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa

from pathway.store.tables import case_t

DUE_SOON = timedelta(hours=24)

DeadlineStatus = Literal["overdue", "due_soon"]


def deadline_status(due_at: datetime | None, now: datetime, closed: bool = False) -> DeadlineStatus | None:
    """"overdue" once the deadline has passed, "due_soon" within ``DUE_SOON`` before it; None without a deadline
    and for a closed case or an ended step (it keeps its history, but is late no more)."""
    if closed or due_at is None:
        return None
    if due_at < now:
        return "overdue"
    return "due_soon" if due_at < now + DUE_SOON else None


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
