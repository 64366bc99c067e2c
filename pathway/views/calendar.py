"""A coordinator's deadlines for their desk calendar: the open steps with a deadline of the cases they coordinate.

Which cases: those of the unit the policy lets the user list (``policy.listed_unit``: a coordinator's own) whose
coordinator they are. Unassigned cases of the unit are left out: they are the whole unit's to pick up, on its case
list, and in every coordinator's calendar they would be the same deadline many times over (and each copy a reason to
ignore the feed). A case seen under emergency access is not the user's to coordinate, so it is not in it either.
Nothing about the person is read here: the reference, the step and its deadline only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pathway.machine import OPEN_STEP_STATES
from pathway.store.tables import calendar_feed_t, case_t, step_t


@dataclass(frozen=True, slots=True)
class Deadline:
    """One open step with a deadline, and what is needed to name it (its checkpoint in the case's definition)."""

    step_id: uuid.UUID
    reference: str
    pathway_id: str
    definition_version: int
    code: str
    adhoc: bool
    due_at: datetime
    paused: bool


def coordinated_deadlines(conn: sa.Connection, *, unit: str | None, coordinator: str) -> list[Deadline]:
    """The open steps with a deadline of ``unit``'s open cases coordinated by ``coordinator``, soonest first
    (``unit`` None: nothing, for a user the policy lists no cases for)."""
    if unit is None:
        return []
    rows = conn.execute(
        sa.select(step_t.c.id, case_t.c.reference, case_t.c.pathway_id, case_t.c.definition_version, step_t.c.code,
                  step_t.c.adhoc, step_t.c.due_at, case_t.c.paused_since)
        .join(case_t, case_t.c.id == step_t.c.case_id)
        .where(case_t.c.unit == unit, case_t.c.coordinator == coordinator, case_t.c.closed_at.is_(None),
               step_t.c.ended_at.is_(None), step_t.c.due_at.is_not(None), step_t.c.state.in_(OPEN_STEP_STATES))
        .order_by(step_t.c.due_at, case_t.c.reference, step_t.c.position))
    return [Deadline(r.id, r.reference, r.pathway_id, r.definition_version, r.code, r.adhoc, r.due_at,
                     r.paused_since is not None) for r in rows]


def live_feed(conn: sa.Connection, username: str) -> Any | None:
    """The user's live feed (a row: id, created_at), or None: its address is never shown again."""
    return conn.execute(sa.select(calendar_feed_t.c.id, calendar_feed_t.c.created_at).where(
        calendar_feed_t.c.username == username, calendar_feed_t.c.revoked_at.is_(None))).first()
