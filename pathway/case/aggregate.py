"""The case aggregate: one person's way through a pathway.

A case holds its phase (a state of the definition's shared phase machine), its steps (each with the small
pending → active → done/skipped/cancelled lifecycle of ``STEP_MACHINE``), consents, milestones and handover
tasks. Every change is a command (``pathway.case.commands``) handed to ``Case.execute``: the command checks what
is its own to check, the phase machine's guard what a transition needs, and then the case changes and appends one
``Event`` carrying the command's fields, so that replaying the events rebuilds it exactly. A change that is not
allowed raises a ``DomainError`` and changes nothing.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from transitions import MachineError

from pathway.case.commands.base import COMMANDS, Command, Context, Resolver
from pathway.case.deadlines import Deadlines
from pathway.case.events import PLAIN, Event, Sealer, event_hash, seal_texts
from pathway.case.refusals import Refusal
from pathway.case.values import BACKDATE_TOLERANCE, REASON_REQUIRED, actor_name, iso, text, utc
from pathway.definition import PathwayDefinition
from pathway.errors import N_, DomainError, InvalidArgument
from pathway.machine import compile_pathway

# How first contact came (K0), as the open event records it: by phone, walking in, escorted by the police, referred.
# The ones staff type in at intake; "police" is a police referral accepted (pathway.services.referrals), never typed.
TYPED_CHANNELS = ("phone", "walk_in", "police_escort", "referral")
CONTACT_CHANNELS = (*TYPED_CHANNELS, "police")

BACKDATED = N_("first contact lies more than an hour back: give the reason for backdating")


class Case(Deadlines):
    """The case aggregate. Create with ``Case.open``; change with ``execute``; rebuild from events with ``replay``."""

    @classmethod
    def open(
        cls,
        definition: PathwayDefinition,
        *,
        case_id: uuid.UUID,
        reference: str,
        unit: str,
        first_contact_at: datetime,
        actor: str,
        at: datetime,
        conditions: Iterable[str] = (),
        reason: str | None = None,
        channel: str | None = None,
        contact_channel: str | None = None,
        part_of: uuid.UUID | None = None,
        sealer: Sealer = PLAIN,
    ) -> Case:
        """Open a case at first contact. A first contact more than an hour before ``at`` is backdating: give a reason.
        ``contact_channel``: how first contact came (one of ``CONTACT_CHANNELS``; None: not recorded). ``part_of``: a
        child's pathway names the adult's case it belongs to (``pathway.services.children``). ``sealer``: the case's own
        key, under which its free text is stored (``pathway.store.casekeys``)."""
        first_contact_at, at = utc(first_contact_at, "first_contact_at"), utc(at)
        actor = actor_name(actor)
        if first_contact_at > at + BACKDATE_TOLERANCE:
            raise InvalidArgument("first_contact_at", "first contact cannot lie in the future")
        reason = text("reason", reason, required=first_contact_at < at - BACKDATE_TOLERANCE,
                      missing=BACKDATED)
        wanted = sorted(set(conditions))
        for cond in wanted:
            if cond not in definition.conditions:
                raise InvalidArgument("conditions", "unknown condition '{name}'", name=cond)
        if not unit or len(unit) > 64:
            raise InvalidArgument("unit", "a unit (1–64 characters) is required")
        if contact_channel is not None and contact_channel not in CONTACT_CHANNELS:
            raise InvalidArgument("contact_channel", "one of {choices}", choices=list(CONTACT_CHANNELS))
        case = cls(id=case_id, reference=reference, definition=definition, unit=unit, opened_at=first_contact_at,
                   phase=definition.initial_phase, conditions=set(wanted), part_of=part_of)
        case.sealer = sealer
        payload = {"pathway": definition.id, "version": definition.version, "reference": reference, "unit": unit,
                   "first_contact_at": iso(first_contact_at), "conditions": wanted}
        if contact_channel is not None:  # only when recorded, so that older open events hash as they did
            payload["contact_channel"] = contact_channel
        if part_of is not None:
            payload["part_of"] = str(part_of)

        def apply() -> None:
            case.refresh(first_contact_at)
            for step in case.steps:
                checkpoint = definition.checkpoint.get(step.code)
                if checkpoint is not None and checkpoint.completed_by == "open":
                    case.end(step, "complete", actor, first_contact_at)
            case.refresh(at)

        case.record("open", Context(actor, at, channel=channel), reason=reason, payload=payload, apply=apply)
        return case

    def execute(self, command: Command, *, actor: str, at: datetime, resolve: Resolver | None = None,
                channel: str | None = None) -> Any:
        """Run one command on the case: it changes the case and appends its event, or raises and changes nothing.
        Returns what the command yields (the code of an ad-hoc step, the id of a handover task)."""
        return command.run(self, Context(actor_name(actor), utc(at), resolve, channel))

    # -- the phase machine's callbacks (named in ``pathway.machine``) -----------------------------------------

    def fire(self, trigger: str, ctx: Context, **context: Any) -> None:
        """Take a phase transition; the machine refuses a trigger that does not leave this phase."""
        try:
            compile_pathway(self.definition).fire(trigger, self, at=ctx.at, actor=ctx.actor, **context)
        except MachineError as exc:
            raise self.not_allowed(trigger) from exc

    def transition_refusal(self, trigger: str, operation: str, *, requires: bool = True) -> Refusal | None:
        """Why a transition of the definition may not be taken now: into a final phase only by closing, back only
        where the pathway allows returning, and (``requires``) not before the steps it requires have ended. The
        guard raises it; the advance command offers the transitions without one of the first two, and the case page
        offers a move only without any (``Advance.refused``)."""
        transition = self.definition.transition[trigger]
        if operation == "advance" and transition.dest in self.definition.final_phases:
            return Refusal(trigger, "use_close")
        if transition.kind == "return" and "return" not in self.definition.adaptations:
            return Refusal("return", "adaptation")
        missing = self.missing(transition.requires) if requires else []
        if missing:
            return Refusal(trigger if operation == "advance" else operation, "requires", {"missing": list(missing)})
        return None

    def guard(self, event: Any) -> bool:
        """Condition of every phase transition: raises why it may not be taken now (so the machine never
        answers a bare no)."""
        trigger, kw = event.event.name, event.kwargs
        operation = kw["operation"]
        transition = self.definition.transition.get(trigger)
        if transition is None and operation == "advance":  # closing early is the close command's (an adaptation)
            raise self.not_allowed(trigger)
        refused = self.transition_refusal(trigger, operation, requires=False) if transition is not None else None
        if refused is not None:
            raise refused.error(self)
        if self.reason_required(trigger) and not kw["reason"]:
            raise InvalidArgument("reason", REASON_REQUIRED)
        refused = self.transition_refusal(trigger, operation) if transition is not None else None
        if refused is not None:
            raise refused.error(self)
        return True

    def refusal(self, *commands: Command, at: datetime) -> Refusal | None:
        """Why these commands, run one after the other at ``at`` in one change, would be refused now (None: they
        would not be, by every rule that does not depend on free text). One command is asked as ``run`` asks it
        (``Command.refused``); for each later one, the earlier ones are first run on a copy of the case, so that
        e.g. a handover on a consent recorded in the same change is answered as the engine will answer it."""
        case: Case = self
        for i, command in enumerate(commands):
            refused = command.refused(case)
            if refused is not None or i == len(commands) - 1:
                return refused
            if case is self:
                case = copy.deepcopy(self, memo={id(self.definition): self.definition})
            try:
                case.execute(command, actor="check", at=at)
            except DomainError as exc:
                return getattr(exc, "refusal", None) or Refusal(command.operation, "rule", cause=exc)
        return None

    def allowed_operations(self) -> list[str]:
        """What can be done to the case now: what the commands offer, by the rule their ``run`` refuses by."""
        return [op for command in COMMANDS.values() for op in command.offered(self)]

    def entered(self, event: Any) -> None:
        """After-callback of every transition of the definition: stamp the milestone it records."""
        transition = self.definition.transition[event.event.name]
        if transition.records:
            self.milestones[transition.records] = event.kwargs["at"]

    # -- the event ---------------------------------------------------------------------------------------------

    def record(self, operation: str, ctx: Context, *, reason: str | None, payload: dict[str, Any],
               apply: Callable[[], None]) -> None:
        """Apply a checked change and append its event, hash-chained to the one before."""
        before = self.summary(self.head_digest) if self.version else {}
        apply()
        self.version += 1
        reason, payload = seal_texts(self.sealer, reason, payload)
        after = self.summary()
        self.head_digest = after["digest"]
        event = Event(
            case_id=self.id, seq=self.version, at=ctx.at, actor=ctx.actor, operation=operation, reason=reason,
            payload=payload, state_before=before, state_after=after, prev_hash=self.head_hash, hash="",
            channel=ctx.channel,
        )
        event = replace(event, hash=event_hash(self.head_hash, event.body()))
        self.head_hash = event.hash
        self.new_events.append(event)
