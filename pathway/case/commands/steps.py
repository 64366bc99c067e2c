"""Commands on one step: complete it, skip it, or add an ad-hoc one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pathway.case.commands.base import Command, Context, arg, effective_at, with_effective_at
from pathway.case.refusals import Refusal
from pathway.case.values import LATE_NOTE_REQUIRED, MAX_TEXT, iso, text, utc
from pathway.errors import InvalidArgument

if TYPE_CHECKING:
    from pathway.case.aggregate import Case


@dataclass(frozen=True)
class CompleteStep(Command, operation="complete", action="case.complete", route="/steps/{code}/complete",
                   target="code", summary="Complete a checkpoint or ad-hoc step"):
    """Mark the open occurrence of a checkpoint (or an ad-hoc step) done, now or when it was done
    (``effective_at``, recorded after the fact). Late, the note says why."""

    code: str = arg(max_length=32, example="K1")
    note: str | None = arg(None, max_length=MAX_TEXT)
    effective_at: datetime | None = arg(None)

    def refused(self, case: Case) -> Refusal | None:
        """Also: the step is open, completed by hand (not by another operation) and active (not waiting)."""
        refused = super().refused(case) or case.step_refusal(self.code, self.operation)
        if refused is not None:
            return refused
        checkpoint = case.definition.checkpoint.get(self.code)
        if checkpoint is not None and checkpoint.completed_by != "manual":
            return Refusal(self.operation, "completed_by", {"code": self.code, "by": checkpoint.completed_by})
        return case.step_refusal(self.code, self.operation, trigger="complete")

    def run(self, case: Case, ctx: Context) -> None:
        self.check(case)
        step = case.open_step(self.code, self.operation)
        at = effective_at(self.effective_at, case, ctx)
        due = case.effective_due(step, at)
        late = due is not None and due < at and step.state == "active"
        # A missed deadline is allowed, but its reason must be documented: the note becomes the event's reason.
        note = text("note", self.note, required=late, missing=LATE_NOTE_REQUIRED)
        case.record(self.operation, ctx, reason=note if late else None,
                    payload=with_effective_at({"code": self.code, "note": note}, self.effective_at, at),
                    apply=lambda: case.end(step, "complete", ctx.actor, at))


@dataclass(frozen=True)
class SkipStep(Command, operation="skip", action="case.skip", route="/steps/{code}/skip", target="code",
               summary="Skip a checkpoint as not applicable", adaptation="skip"):
    """Mark a checkpoint not applicable for this person (an individual adaptation)."""

    code: str = arg(max_length=32, example="K2")
    reason: str = arg(min_length=1, max_length=MAX_TEXT, example="ikke aktuelt for denne personen")

    def refused(self, case: Case) -> Refusal | None:
        """Also: the step is open and its checkpoint may be skipped."""
        refused = super().refused(case) or case.step_refusal(self.code, self.operation, trigger="skip")
        if refused is not None:
            return refused
        checkpoint = case.definition.checkpoint.get(self.code)
        if checkpoint is not None and not checkpoint.skippable:
            return Refusal(self.operation, "not_skippable", {"code": self.code})
        return None

    def run(self, case: Case, ctx: Context) -> None:
        self.check(case)
        reason = text("reason", self.reason, required=self.reason_required(case))
        step = case.open_step(self.code, self.operation)
        case.record(self.operation, ctx, reason=reason, payload={"code": self.code},
                    apply=lambda: case.end(step, "skip", ctx.actor, ctx.at))


@dataclass(frozen=True)
class AddStep(Command, operation="add_step", action="case.add_step", route="/steps",
              summary="Add an ad-hoc step with its own deadline", adaptation="add_step"):
    """Add an ad-hoc step with its own deadline; returns its code (A1, A2, ...)."""

    title: str = arg(min_length=1, max_length=MAX_TEXT, example="Følge til fastlege")
    owner: str = arg(min_length=1, max_length=64, example="coordinator")
    due_at: datetime = arg()
    reason: str = arg(min_length=1, max_length=MAX_TEXT, example="avtalt med personen")

    def run(self, case: Case, ctx: Context) -> str:
        due_at = utc(self.due_at, "due_at")
        self.check(case)
        reason = text("reason", self.reason, required=True)
        title = text("title", self.title, required=True)
        if self.owner not in case.definition.roles and self.owner not in case.definition.agencies:
            raise InvalidArgument("owner", "unknown owner '{owner}' (not a role or an agency)", owner=self.owner)
        code = f"A{sum(1 for s in case.steps if s.adhoc) + 1}"

        def apply() -> None:
            step = case.new_step(code, 1, self.owner, ctx.at, adhoc=True, title=title)
            case.activate(step, ctx.at, anchor_at=ctx.at, due_at=due_at)

        payload: dict[str, Any] = {"code": code, "title": title, "owner": self.owner, "due_at": iso(due_at)}
        case.record(self.operation, ctx, reason=reason, payload=payload, apply=apply)
        return code
