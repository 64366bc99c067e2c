"""Overdue and due soon as SQL over the cases' next deadline: the domain's ``deadline_status``, for the case list."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from pathway.case.values import DUE_SOON, DeadlineStatus, deadline_status
from pathway.store.tables import case_t

__all__ = ["DUE_SOON", "DeadlineStatus", "deadline_status", "due_soon_clause", "overdue_clause"]

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
