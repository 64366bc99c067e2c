"""Commands on the case's clock: pause it (paused time does not count against deadlines) and resume it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from pathway.case.commands.base import EFFECTIVE_AT, Command, Context, arg, effective_at, with_effective_at
from pathway.case.deadlines import PAUSED_TIME, WORKING_TIME
from pathway.case.refusals import Refusal
from pathway.case.values import MAX_TEXT, text
from pathway.errors import InvalidArgument

if TYPE_CHECKING:
    from pathway.case.aggregate import Case
    from pathway.case.events import Event


@dataclass(frozen=True)
class Pause(Command, operation="pause", action="case.pause", route="/pause", summary="Pause the clock",
            adaptation="pause", children=True):
    """Stop the clock (person unreachable, in hospital, asks for a delay), now or from when it stood still
    (``effective_at``, recorded after the fact). Paused time moves due times."""

    reason: str = arg(min_length=1, max_length=MAX_TEXT, example="personen er på sykehus")
    effective_at: datetime | None = arg(None)

    # How the pause gives its time back to deadlines in working days, recorded in its event's payload: a rule of the
    # event, not a choice of whoever pauses (so not a field, nor in a request's body). A pause now gives it back in
    # working time; replayed, a pause whose event has no rule (recorded before there was one) in calendar time.
    paused_time: ClassVar[str | None] = WORKING_TIME

    @classmethod
    def refusal(cls, case: Case) -> Refusal | None:
        if case.paused_since is not None and not case.is_closed:
            return Refusal(cls.operation, "paused")
        return super().refusal(case)

    @classmethod
    def from_event(cls, event: Event) -> Pause:
        command = super().from_event(event)
        rule = event.payload.get(PAUSED_TIME)
        if rule != cls.paused_time:
            object.__setattr__(command, "paused_time", rule)  # the rule its event was recorded under
        return command

    def run(self, case: Case, ctx: Context) -> None:
        self.check(case)
        reason = text("reason", self.reason, required=True)
        at = effective_at(self.effective_at, case, ctx)

        def apply() -> None:
            case.paused_since, case.paused_time = at, self.paused_time

        payload = {} if self.paused_time is None else {PAUSED_TIME: self.paused_time}
        case.record(self.operation, ctx, reason=reason, payload=with_effective_at(payload, self.effective_at, at),
                    apply=apply)


@dataclass(frozen=True)
class Resume(Command, operation="resume", action="case.resume", route="/resume",
             summary="Resume the clock (deadlines move by the paused time)", children=True):
    """Restart the clock, now or from when it ran again (``effective_at``); every open deadline moves by the time
    the clock stood still (a deadline in working days by the working time, so that it lands on a working day, where
    the pause recorded that rule; the event records it again, for the report, which reads resumes only)."""

    reason: str | None = arg(None, max_length=MAX_TEXT)
    effective_at: datetime | None = arg(None)

    @classmethod
    def refusal(cls, case: Case) -> Refusal | None:
        if case.paused_since is None and not case.is_closed:
            return Refusal(cls.operation, "not_paused")
        return super().refusal(case)

    def run(self, case: Case, ctx: Context) -> None:
        self.check(case)
        paused_since = case.paused_since
        assert paused_since is not None
        at = effective_at(self.effective_at, case, ctx)
        if at < paused_since:
            raise InvalidArgument("at" if self.effective_at is None else EFFECTIVE_AT,
                                  "resume cannot precede the pause")
        reason = text("reason", self.reason, required=False)
        payload = {} if case.paused_time is None else {PAUSED_TIME: case.paused_time}

        def apply() -> None:
            for step in case.steps:
                if step.is_open and step.due_at is not None:
                    step.due_at = case.moved_by_pause(step, paused_since, at)
            case.paused_since = case.paused_time = None
            case.sync_handover_deadlines()

        case.record(self.operation, ctx, reason=reason, payload=with_effective_at(payload, self.effective_at, at),
                    apply=apply)
