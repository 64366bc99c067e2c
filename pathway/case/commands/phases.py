"""Commands that move the case between phases: advance (forward or back), close, transfer, migrate.

Whether a transition may be taken now is the phase machine's to say: its ``guard`` condition (on the case) raises
the domain's error with the reason, and the machine refuses a trigger that does not leave the current phase.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pathway.case.commands.base import Command, Context, arg
from pathway.case.refusals import Refusal
from pathway.case.values import MAX_TEXT, text
from pathway.errors import InvalidArgument
from pathway.machine import CLOSE_EARLY, compile_pathway

if TYPE_CHECKING:
    from pathway.case.aggregate import Case


@dataclass(frozen=True)
class Advance(Command, operation="advance", action="case.advance", route="/transitions/{trigger}", target="trigger",
              summary="Move to another phase (forward or back)"):
    """Fire a phase transition of the definition (forward, or back to an earlier phase with a reason)."""

    trigger: str = arg(max_length=64, example="start_support")
    reason: str | None = arg(None, max_length=MAX_TEXT)

    @classmethod
    def offered(cls, case: Case) -> list[str]:
        if cls.refusal(case) is not None:
            return []
        return [f"advance:{t}" for t in compile_pathway(case.definition).triggers(case.phase)
                if case.transition_refusal(t, cls.operation, requires=False) is None]

    def refused(self, case: Case) -> Refusal | None:
        """Also: the trigger leaves the current phase, and the guard would let it be taken (the steps it requires
        have ended)."""
        refused = super().refused(case)
        if refused is not None:
            return replace(refused, operation=self.trigger)
        if self.trigger not in compile_pathway(case.definition).triggers(case.phase):
            return Refusal(self.trigger, "no_transition")
        return case.transition_refusal(self.trigger, self.operation)

    def reason_required(self, case: Case) -> bool:
        return self.trigger in case.definition.transition and case.reason_required(self.trigger)

    def run(self, case: Case, ctx: Context) -> None:
        refused = self.refusal(case)
        if refused is not None:
            raise replace(refused, operation=self.trigger).error(case)
        reason = text("reason", self.reason, required=False)

        def apply() -> None:
            case.fire(self.trigger, ctx, operation=self.operation, reason=reason)
            transition = case.definition.transition[self.trigger]
            if transition.kind == "return":
                case.return_to(transition.dest, ctx.at, ctx.actor)
            case.refresh(ctx.at)

        case.record(self.operation, ctx, reason=reason, payload={"trigger": self.trigger}, apply=apply)


def close_case(case: Case, ctx: Context, operation: str, outcome: str, reason: str | None, payload: dict[str, Any],
               *, early: bool = False, also: Callable[[], None] | None = None) -> None:
    """End the case: by the definition's transition to closure when the phase has one, else early (an
    adaptation, with a reason). Open steps are cancelled, open handover tasks too, and the clock stops."""
    if outcome not in case.definition.outcomes:
        raise InvalidArgument("outcome", "unknown outcome code; valid: {valid}", valid=list(case.definition.outcomes))
    trigger = CLOSE_EARLY if early else case.closing_trigger()
    reason = text("reason", reason, required=False)

    def apply() -> None:
        closing = case.open_steps_completed_by("close")
        case.fire(trigger, ctx, operation=operation, reason=reason)
        for step in closing:
            if step.state == "pending":
                case.activate(step, ctx.at)
            case.end(step, "complete", ctx.actor, ctx.at)
        for step in case.steps:
            if step.is_open:
                case.end(step, "cancel", ctx.actor, ctx.at)
        for task in case.handovers:
            if task.is_open:
                task.status, task.updated_at = "cancelled", ctx.at
        case.paused_since = None
        case.closed_at, case.outcome = ctx.at, outcome
        if also is not None:
            also()

    case.record(operation, ctx, reason=reason, payload=payload, apply=apply)


@dataclass(frozen=True)
class Close(Command, operation="close", action="case.close", route="/close", summary="Close with an outcome code"):
    """Close with an outcome code: normally from a phase that leads to closure, early with a reason."""

    outcome: str = arg(min_length=1, max_length=64, example="safe_housing")
    reason: str | None = arg(None, max_length=MAX_TEXT)

    @classmethod
    def refusal(cls, case: Case) -> Refusal | None:
        # Closing from a phase without a transition to closure is closing early: an adaptation.
        if not case.is_closed and not case.close_is_normal() and "close_early" not in case.definition.adaptations:
            return Refusal("close_early", "adaptation")
        return super().refusal(case)

    def refused(self, case: Case) -> Refusal | None:
        """Also: the transition to closure would be taken (the steps it requires have ended)."""
        refused = super().refused(case)
        if refused is None and case.close_is_normal():
            return case.transition_refusal(case.closing_trigger(), self.operation)
        return refused

    def reason_required(self, case: Case) -> bool:
        return case.reason_required(case.closing_trigger())  # closing early needs one; closing normally does not

    def run(self, case: Case, ctx: Context) -> None:
        self.check(case)
        close_case(case, ctx, self.operation, self.outcome, self.reason, {"outcome": self.outcome})


@dataclass(frozen=True)
class Transfer(Command, operation="transfer", action="case.transfer", route="/transfer",
               summary="Transfer to another municipality", adaptation="transfer"):
    """Transfer the person to another municipality: closes this case with the outcome 'transferred'."""

    municipality: str = arg(min_length=1, max_length=200, example="Testkommune")
    reason: str = arg(min_length=1, max_length=MAX_TEXT, example="flyttet til annen kommune")

    def run(self, case: Case, ctx: Context) -> None:
        self.check(case)
        municipality = text("municipality", self.municipality, required=True) or ""
        if "transferred" not in case.definition.outcomes:
            raise InvalidArgument("outcome", "this pathway has no 'transferred' outcome")
        close_case(case, ctx, self.operation, "transferred", self.reason, {"municipality": municipality}, early=True,
                   also=lambda: setattr(case, "transferred_to", municipality))


@dataclass(frozen=True)
class Migrate(Command, operation="migrate", action="case.migrate"):
    """Move the case to another version of its pathway, renaming checkpoint codes by ``mapping``."""

    pathway: str
    version: int
    mapping: dict[str, str]
    reason: str

    def run(self, case: Case, ctx: Context) -> None:
        self.check(case)
        reason = text("reason", self.reason, required=True)
        if ctx.resolve is None:
            raise InvalidArgument("pathway", "no definition catalog to migrate with")
        definition = ctx.resolve(self.pathway, self.version)
        unmapped = sorted({s.code for s in case.steps if not s.adhoc} - set(self.mapping))
        if unmapped:
            raise InvalidArgument("mapping", "checkpoints in use are not mapped: {codes}", codes=list(unmapped))
        unknown = sorted(v for v in self.mapping.values() if v not in definition.checkpoint)
        if unknown:
            raise InvalidArgument("mapping", "not checkpoints of the new version: {codes}", codes=list(unknown))
        if case.phase not in definition.phase_order:
            raise InvalidArgument("mapping", "the new version has no phase '{phase}'", phase=case.phase)

        def apply() -> None:
            case.definition = definition
            for step in case.steps:
                if not step.adhoc:
                    step.code = self.mapping[step.code]
            for task in case.handovers:
                task.code = self.mapping.get(task.code, task.code)
            case.refresh(ctx.at)

        payload = {"pathway": definition.id, "version": definition.version,
                   "mapping": dict(sorted(self.mapping.items()))}
        case.record(self.operation, ctx, reason=reason, payload=payload, apply=apply)
