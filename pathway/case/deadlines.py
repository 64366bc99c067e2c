"""The deadline engine: which steps apply, when each becomes active, and when it is due.

Every step moves through ``STEP_MACHINE``; its after-callbacks stamp the step (``activated_at``, ``ended_at`` and
``ended_by``) from the trigger's ``at`` and ``actor``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from transitions import MachineError

from pathway.calendar import Unit, add_working_time, end_of_day, shift, working_time_between
from pathway.case.refusals import Refusal
from pathway.case.state import CaseState
from pathway.case.values import Step
from pathway.definition import CONSENT_PREFIX, FIRST_CONTACT, Checkpoint
from pathway.machine import step_transition

# How a pause gives its time back to a deadline in working days, as its event records it (the payload's
# ``paused_time``): in working time. A pause whose event does not say (recorded before the rule was) gives it back in
# calendar time, as it did then, so that the events of older cases replay to their recorded state.
PAUSED_TIME = "paused_time"
WORKING_TIME = "working"


class Deadlines(CaseState):
    """The case's steps and their deadlines, kept in line with its phase, conditions, anchors and the clock."""

    _paused_time: str | None = None

    @property
    def paused_time(self) -> str | None:
        """The rule the pause under way was recorded with: ``WORKING_TIME``, or None (calendar time; not paused)."""
        return self._paused_time if self.paused_since is not None else None

    @paused_time.setter
    def paused_time(self, rule: str | None) -> None:
        self._paused_time = rule

    def new_step(self, code: str, occurrence: int, owner: str, at: datetime, *, adhoc: bool = False,
                 title: str | None = None) -> Step:
        step_id = uuid.uuid5(self.id, f"{code}#{occurrence}")
        if any(s.id == step_id for s in self.steps):
            # A migration renamed the step that had this code (K8 -> K9) and the new version gives the code to another
            # checkpoint: this step needs an id of its own, the same on every replay (its position never changes).
            step_id = uuid.uuid5(self.id, f"{code}#{occurrence}@{len(self.steps)}")
        step = Step(id=step_id, code=code, occurrence=occurrence, owner=owner, created_at=at, adhoc=adhoc, title=title)
        self.steps.append(step)
        return step

    def activate(self, step: Step, at: datetime, *, anchor_at: datetime | None = None,
                 due_at: datetime | None = None) -> None:
        step.anchor_at, step.due_at = anchor_at, due_at
        step_transition("activate", step, at=at)

    def end(self, step: Step, trigger: str, actor: str, at: datetime) -> None:
        """Complete, skip or cancel a step; a step that is not in a state the trigger leaves is refused."""
        due = self.effective_due(step, at)
        try:
            step_transition(trigger, step, at=at, actor=actor)
        except MachineError as exc:
            why, params = self.waiting(step) if step.state == "pending" else ("ended", {"state": step.state})
            raise Refusal(trigger, why, {"code": step.code, **params}).error(self) from exc
        step.due_at = due  # ended during a pause: its deadline moves as a resume would have moved it
        if trigger == "complete" and not step.adhoc:
            self._schedule_repeat(step, at)

    def _schedule_repeat(self, step: Step, at: datetime) -> None:
        checkpoint = self.definition.checkpoint[step.code]
        if not checkpoint.repeat or self.phase not in checkpoint.phases:
            return
        rule = checkpoint.repeat_interval(step.occurrence + 1)
        if rule is None:
            return
        nxt = self.new_step(step.code, step.occurrence + 1, checkpoint.owners[0], at)
        self.activate(nxt, at, anchor_at=at, due_at=shift(at, rule.amount, rule.unit))

    def effective_due(self, step: Step, at: datetime) -> datetime | None:
        """The deadline at ``at``: while the clock is paused, the pause so far (after the anchor) does not count."""
        if step.due_at is None or self.paused_since is None:
            return step.due_at
        return self.moved_by_pause(step, self.paused_since, at)

    def moved_by_pause(self, step: Step, paused_since: datetime, until: datetime) -> datetime | None:
        """The step's deadline moved by a pause from ``paused_since`` to ``until`` (only the part after its anchor
        counted against it). A deadline in working days moves by the paused working time, counted in working time,
        so that it still lands on a working day (paused Tue 10:00 to Thu 10:00 on "3 working days from Mon 10:00":
        Mon 10:00 a week on, not Saturday), where the pause recorded that rule (``paused_time``); any other by the
        paused time."""
        if step.due_at is None:
            return None
        start = max(paused_since, step.anchor_at or paused_since)
        if self.deadline_unit(step) is Unit.WORKING_DAYS and self.paused_time == WORKING_TIME:
            return add_working_time(step.due_at, working_time_between(start, until))
        return step.due_at + max(until - start, timedelta(0))

    def deadline_unit(self, step: Step) -> Unit | None:
        """The unit the step's deadline was set in: its checkpoint's deadline, or its repeat interval for a repeat
        of a repeating checkpoint; None for an ad-hoc step (a fixed time)."""
        checkpoint = None if step.adhoc else self.definition.checkpoint.get(step.code)
        if checkpoint is None:
            return None
        rule = checkpoint.repeat_interval(step.occurrence) if checkpoint.repeat and step.occurrence > 1 else None
        offset = rule if rule is not None else checkpoint.deadline
        return None if offset is None else Unit(offset.unit)

    def anchor(self, anchor: str) -> datetime | None:
        if anchor == FIRST_CONTACT:
            return self.opened_at
        if anchor in self.definition.checkpoint:
            step = self.latest(anchor)
            return step.ended_at if step is not None and step.state == "done" else None
        if anchor.startswith(CONSENT_PREFIX):
            consent = self.consents.get(anchor[len(CONSENT_PREFIX):])
            return consent.recorded_at if consent is not None and consent.given else None
        return self.milestones.get(anchor)

    @staticmethod
    def due(checkpoint: Checkpoint, anchor_at: datetime) -> datetime | None:
        if checkpoint.deadline is None:
            return None
        return shift(anchor_at, checkpoint.deadline.amount, checkpoint.deadline.unit)

    def reanchor(self, anchor: str) -> None:
        """An anchor moved (a milestone re-planned, consent given again): open steps on it get new deadlines."""
        for step in self.steps:
            checkpoint = self.definition.checkpoint.get(step.code)
            if (step.state == "active" and checkpoint is not None and checkpoint.deadline is not None
                    and checkpoint.deadline.after == anchor and step.occurrence == 1):
                anchor_at = self.anchor(anchor)
                if anchor_at is not None:
                    step.anchor_at = anchor_at
                    step.due_at = self.same_day(step, self.due(checkpoint, anchor_at))
        self.sync_handover_deadlines()

    def same_day(self, step: Step, due: datetime | None) -> datetime | None:
        """``due``, or sooner: the end of the day an open handover of the step was sent, where the checkpoint asks for
        the same day at the threat level the task was sent at (high risk: the police act the same day)."""
        checkpoint = self.definition.checkpoint.get(step.code)
        handover = checkpoint.handover if checkpoint is not None else None
        sent = [t.created_at for t in self.handovers
                if handover and t.code == step.code and t.is_open and handover.same_day(t.urgency)]
        if not sent:
            return due
        by = end_of_day(max(sent))
        return by if due is None or by < due else due

    def sync_handover_deadlines(self) -> None:
        for task in self.handovers:
            if task.is_open:
                step = self.latest(task.code)
                if step is not None and step.is_open:
                    task.due_at = step.due_at

    def return_to(self, dest: str, at: datetime, actor: str) -> None:
        """Going back: checkpoints of the phase returned to start again; those only of later phases stop."""
        order = self.definition.phase_order
        for t in self.definition.transitions:
            if t.records and any(order[s] >= order[dest] for s in t.sources):
                self.milestones.pop(t.records, None)
        for checkpoint in self.definition.checkpoints:
            # Reopen only work that is redone with the person; an assigned coordinator stays assigned.
            if checkpoint.completed_by not in ("manual", "consent") or checkpoint.repeat:
                continue
            step = self.latest(checkpoint.code)
            if step is None:
                continue
            first = min(order[p] for p in checkpoint.phases)
            if step.is_open and first > order[dest]:
                self.end(step, "cancel", actor, at)
            elif not step.is_open and step.state != "cancelled" and first >= order[dest] and dest in checkpoint.phases:
                self.new_step(checkpoint.code, step.occurrence + 1, checkpoint.owners[0], at)
            elif step.state == "cancelled" and dest in checkpoint.phases:
                self.new_step(checkpoint.code, step.occurrence + 1, checkpoint.owners[0], at)

    def refresh(self, at: datetime) -> None:
        """Create the steps that now apply and activate those whose needs and anchor are met."""
        if self.is_closed:
            return
        for checkpoint in self.definition.checkpoints:
            step = self.latest(checkpoint.code)
            applies = all(c in self.conditions for c in checkpoint.when)
            if step is None:
                if applies and self.phase in checkpoint.phases:
                    step = self.new_step(checkpoint.code, 1, checkpoint.owners[0], at)
                else:
                    continue
            if not applies and step.is_open:
                self.end(step, "cancel", "system", at)
                continue
            # In an open case a step is cancelled only because its condition lapsed or the case went back to an
            # earlier phase: either way the checkpoint applies again once its condition and phase do.
            if step.state == "cancelled" and applies and self.phase in checkpoint.phases:
                step = self.new_step(checkpoint.code, step.occurrence + 1, checkpoint.owners[0], at)
            if step.state != "pending" or self.missing(checkpoint.needs):
                continue
            anchor_at = None
            if checkpoint.deadline is not None:
                anchor_at = self.anchor(checkpoint.deadline.after)
                if anchor_at is None:
                    continue
                if step.occurrence > 1:
                    anchor_at = max(anchor_at, step.created_at)
            self.activate(step, at, anchor_at=anchor_at,
                          due_at=self.due(checkpoint, anchor_at) if anchor_at is not None else None)
