"""Reminder ladders: when each rung of a step's ladder falls due. Pure: no I/O, no framework."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pathway.calendar import Unit, shift
from pathway.definition import PathwayDefinition, Rung

HANDOVER_UNACCEPTED = "handover_unaccepted"
# A rung addressed to the unit's managers: raised and kept like any other, but told in the unit's daily digest of
# overdue steps, never one message per step. The role's name; ``notifications.routing.MANAGER`` says it too, as the
# layers keep the two apart (tests/unit/test_role_names.py holds them to ``pathway.accounts.ROLES``).
MANAGER = "manager"


@dataclass(frozen=True, slots=True)
class RungDue:
    """Rung number ``index`` of a step's ladder falls due at ``at``."""

    index: int
    kind: str
    to: str
    at: datetime


def ladder(definition: PathwayDefinition, code: str, *, adhoc: bool = False) -> tuple[Rung, ...]:
    return definition.ladder(None if adhoc else code)


_PlannedRung = tuple[int, str, str, int, Unit]  # index, kind, to, amount, unit
_Plan = tuple[_PlannedRung, ...]
_plans: dict[tuple[str, int, str, str, bool], _Plan] = {}


def _plan(definition: PathwayDefinition, code: str, adhoc: bool) -> _Plan:
    """The ladder as plain tuples, worked out once per definition version and checkpoint (the scan's hot path)."""
    key = (definition.id, definition.version, definition.sha256, code, adhoc)
    plan = _plans.get(key)
    if plan is None:
        rungs: list[_PlannedRung] = [(i, r.kind, r.to, r.at.amount, r.at.unit)
                                     for i, r in enumerate(ladder(definition, code, adhoc=adhoc))]
        checkpoint = None if adhoc else definition.checkpoint.get(code)
        if checkpoint is not None and checkpoint.handover is not None:
            rungs.append((len(rungs), HANDOVER_UNACCEPTED, "coordinator", 0, Unit.HOURS))
        plan = _plans[key] = tuple(rungs)
    return plan


def rung_times(definition: PathwayDefinition, code: str, due_at: datetime, *, adhoc: bool = False) -> list[RungDue]:
    """Every rung of the step's ladder with its moment. Handover checkpoints get one more rung: at the deadline,
    the coordinator hears of a task the agency has not accepted (checked when the rung is reached)."""
    due_at = due_at.astimezone(timezone.utc)  # hours are real hours: add them in UTC, never on the wall clock
    return [RungDue(i, kind, to, due_at + timedelta(hours=amount) if unit is Unit.HOURS else shift(due_at, amount, unit))
            for i, kind, to, amount, unit in _plan(definition, code, adhoc)]


def first_reminder_at(definition: PathwayDefinition, code: str, due_at: datetime | None, *,
                      adhoc: bool = False) -> datetime | None:
    """When the scan should first look at a step (None: never, e.g. no deadline)."""
    if due_at is None:
        return None
    times = [r.at for r in rung_times(definition, code, due_at, adhoc=adhoc)]
    return min(times) if times else None


def crossed(rungs: list[RungDue], now: datetime) -> tuple[list[RungDue], datetime | None]:
    """The rungs due by ``now`` and the moment of the next one still ahead (None when the ladder is done)."""
    due = [r for r in rungs if r.at <= now]
    ahead = [r.at for r in rungs if r.at > now]
    return due, (min(ahead) if ahead else None)


def escalated(definition: PathwayDefinition, code: str, due_at: datetime, now: datetime, *, adhoc: bool = False) -> bool:
    """Whether the step is past a rung addressed to the managers by ``now``: overdue long enough to escalate."""
    return any(r.to == MANAGER and r.at <= now for r in rung_times(definition, code, due_at, adhoc=adhoc))
