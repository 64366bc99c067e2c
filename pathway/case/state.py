"""What a case is (its fields) and what can be asked of it, without changing it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pathway.case.events import GENESIS, PLAIN, Event, Sealer, canonical
from pathway.case.refusals import Refusal
from pathway.case.values import Consent, HandoverTask, Step, iso
from pathway.definition import PathwayDefinition
from pathway.errors import DomainError, OperationNotAllowed, UnknownCheckpoint
from pathway.machine import CLOSE_EARLY, STEP_MACHINE, compile_pathway

ENDED = ("done", "skipped", "cancelled")


@dataclass(eq=False)
class CaseState:
    """The case's state. Operations live in ``pathway.case.commands``; ``Case`` runs them."""

    id: uuid.UUID
    reference: str
    definition: PathwayDefinition
    unit: str
    opened_at: datetime
    phase: str
    conditions: set[str] = field(default_factory=set)
    coordinator: str | None = None
    paused_since: datetime | None = None
    milestones: dict[str, datetime] = field(default_factory=dict)
    consents: dict[str, Consent] = field(default_factory=dict)
    handovers: list[HandoverTask] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    closed_at: datetime | None = None
    outcome: str | None = None
    transferred_to: str | None = None
    risk: str | None = None  # the threat level of the latest assessment (a RISK_LEVELS value), None until assessed
    part_of: uuid.UUID | None = None  # a child's pathway: the adult's case it is part of (None: an adult's pathway)
    version: int = 0
    head_hash: str = GENESIS
    # The digest of the state as its last event left it (that event's state_after), so that an event computes one
    # digest, not two: its state_before is the state_after before it. None where not known (computed when needed).
    head_digest: str | None = None
    new_events: list[Event] = field(default_factory=list)
    sealer: Sealer = PLAIN  # the case's own key for its free text (not state: never in the snapshot)

    # -- questions --------------------------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self.phase in self.definition.final_phases

    def allowed_operations(self) -> list[str]:
        """What can be done to the case now (``Case`` asks its commands)."""
        raise NotImplementedError

    def open_steps(self) -> list[Step]:
        return [s for s in self.steps if s.is_open]

    def next_deadline(self) -> datetime | None:
        dues = [s.due_at for s in self.steps if s.is_open and s.due_at is not None]
        return min(dues) if dues else None

    def close_is_normal(self) -> bool:
        """Whether the current phase has a transition of the definition that leads to closure."""
        return self.closing_trigger() != CLOSE_EARLY

    def latest(self, code: str) -> Step | None:
        latest = None
        for step in self.steps:
            if step.code == code and (latest is None or step.occurrence > latest.occurrence):
                latest = step
        return latest

    def missing(self, codes: Iterable[str]) -> list[str]:
        """Of ``codes``, those whose latest occurrence is still open."""
        missing = []
        for code in codes:
            step = self.latest(code)
            if step is not None and step.state not in ENDED:
                missing.append(code)
        return missing

    def step_refusal(self, code: str, operation: str, trigger: str | None = None) -> Refusal | None:
        """Why the step ``code`` cannot be worked on now: it does not apply (yet), it has ended, or (given the step
        machine's ``trigger``) its state is not one the trigger leaves, e.g. completing a step still waiting."""
        step = self.latest(code)
        if step is None:
            if code in self.definition.checkpoint:
                return Refusal(operation, "not_applicable", {"code": code})
            return Refusal(operation, "unknown_step", {"code": code})
        if not step.is_open:
            return Refusal(operation, "ended", {"code": code, "state": step.state})
        if trigger is not None and trigger not in STEP_MACHINE.get_triggers(step.state):
            why, params = self.waiting(step)
            return Refusal(operation, why, {"code": code, **params})
        return None

    def open_step(self, code: str, operation: str) -> Step:
        refused = self.step_refusal(code, operation)
        if refused is not None:
            raise refused.error(self)
        step = self.latest(code)
        assert step is not None
        return step

    def open_steps_completed_by(self, how: str) -> list[Step]:
        return [
            s for s in self.steps
            if s.is_open and not s.adhoc and self.definition.checkpoint[s.code].completed_by == how
        ]

    def waiting(self, step: Step) -> tuple[str, dict[str, Any]]:
        """Why a pending step is not active yet: a code of ``REFUSALS`` and its parameters."""
        checkpoint = self.definition.checkpoint[step.code]
        missing = self.missing(checkpoint.needs)
        if missing:
            return "needs", {"needs": list(missing)}
        if checkpoint.deadline is not None:
            return "waits_for", {"after": checkpoint.deadline.after}
        return "not_active", {}

    def closing_trigger(self) -> str:
        """The transition that closes the case from here: the definition's to closure, or else closing early."""
        d = self.definition
        return next((t for t in compile_pathway(d).triggers(self.phase) if d.transition[t].dest in d.final_phases),
                    CLOSE_EARLY)

    def reason_required(self, trigger: str) -> bool:
        """Whether taking a phase transition needs a reason: closing early and going back do."""
        transition = self.definition.transition.get(trigger)
        return transition is None or transition.kind == "return"

    def recorded_until(self) -> datetime:
        """The latest moment the case's record holds (first contact, a step created, due or ended, a consent, a
        handover task's change, a pause, the close): a change recorded after the fact cannot have happened before
        it. Read from the state, so that a command checks it the same way when it runs and when it is replayed."""
        moments = [self.opened_at, *(m for m in (self.paused_since, self.closed_at) if m is not None),
                   *(m for s in self.steps for m in (s.created_at, s.activated_at, s.ended_at) if m is not None),
                   *(c.recorded_at for c in self.consents.values()),
                   *(t.updated_at for t in self.handovers)]
        return max(moments)

    # -- refusals ---------------------------------------------------------------------------------------------

    def not_allowed(self, operation: str, detail: str = "", **params: Any) -> OperationNotAllowed:
        """The error of an operation refused here; ``detail`` is an English template of the catalog, filled by
        ``params``."""
        return OperationNotAllowed(operation, phase=self.phase, allowed=self.allowed_operations(), detail=detail,
                                   **params)

    # -- the state as data ------------------------------------------------------------------------------------

    def _sealed(self, text: str | None) -> str | None:
        """A free text as the snapshot holds it: sealed under the case's key (deterministic), so that the digest of a
        state, which every event carries, cannot be used to confirm a guess at a text after the case is erased."""
        if text is None or self.sealer is PLAIN:
            return text
        try:
            return self.sealer.seal(text)
        except DomainError:  # an erased case: its texts are read as the placeholder already, nothing to hide
            return text

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain data: what replay must reproduce exactly (its free text sealed)."""
        t = self._sealed
        return {
            "id": str(self.id),
            "reference": self.reference,
            "pathway": [self.definition.id, self.definition.version],
            "unit": self.unit,
            "opened_at": iso(self.opened_at),
            "phase": self.phase,
            "conditions": sorted(self.conditions),
            "coordinator": self.coordinator,
            "paused_since": iso(self.paused_since),
            "milestones": {k: iso(v) for k, v in sorted(self.milestones.items())},
            "consents": {
                a: [list(c.scope), c.given, iso(c.recorded_at), c.recorded_by] for a, c in sorted(self.consents.items())
            },
            "handovers": [
                [str(h.id), h.code, h.agency, list(h.scope), h.basis, h.status, iso(h.created_at), h.created_by,
                 iso(h.due_at), iso(h.updated_at),
                 *([{k: t(getattr(h, k)) if k in h.TEXTS else getattr(h, k) for k in h.EXTRAS
                     if getattr(h, k) is not None}]
                   if any(getattr(h, k) is not None for k in h.EXTRAS) else [])]
                for h in self.handovers
            ],
            "steps": [
                [str(s.id), s.code, s.occurrence, s.owner, s.state, s.adhoc, t(s.title), iso(s.created_at),
                 iso(s.anchor_at), iso(s.due_at), iso(s.activated_at), iso(s.ended_at), s.ended_by]
                for s in self.steps
            ],
            "closed_at": iso(self.closed_at),
            "outcome": self.outcome,
            "transferred_to": t(self.transferred_to),
            **({"risk": self.risk} if self.risk is not None else {}),  # states from before risk was kept hash alike
            **({"part_of": str(self.part_of)} if self.part_of is not None else {}),  # adults' states hash alike
            "version": self.version,
        }

    def digest(self) -> str:
        return hashlib.sha256(canonical(self.snapshot())).hexdigest()

    def summary(self, digest: str | None = None) -> dict[str, Any]:
        """Small enough to read in a timeline; the digest pins the whole state for replay checks. ``digest``: the
        state's digest where it is known already."""
        return {"phase": self.phase, "paused": self.paused_since is not None, "digest": digest or self.digest()}
