"""Commands on handover tasks: the coordinator creates one for a partner agency (on consent, or on a legal basis
with a reason); the agency accepts, declines (with a reason) or completes it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pathway.case.commands.base import Command, Context, arg, effective_at, with_effective_at
from pathway.case.values import LATE_NOTE_REQUIRED, MAX_TEXT, REASON_REQUIRED, HandoverTask, text
from pathway.case.refusals import Refusal
from pathway.definition import Handover
from pathway.errors import InvalidArgument

if TYPE_CHECKING:
    from pathway.case.aggregate import Case


MOVES = {  # a task's new status -> the statuses it may come from
    "accepted": {"requested"},
    "declined": {"requested", "accepted"},
    "completed": {"requested", "accepted"},
}


@dataclass(frozen=True)
class CreateHandover(Command, operation="create_handover", action="case.handover", route="/handovers",
                     summary="Create a handover task (consent or legal basis)"):
    """Create a handover task for a handover checkpoint's agency. Needs valid consent or a recorded legal basis."""

    code: str = arg(min_length=1, max_length=32, example="K6")
    legal_basis: str | None = arg(None, max_length=64, example="avert_crime")
    reason: str | None = arg(None, max_length=MAX_TEXT)
    agency: str | None = arg(None, max_length=64, example="police")  # where the checkpoint names several: which
    note: str | None = arg(None, max_length=MAX_TEXT, example="Ring før kl. 15")  # to the agency, and it alone

    def receiver(self, handover: Handover) -> str | None:
        """The agency this handover goes to: the one given, else the checkpoint's only one (None: not one of its)."""
        if self.agency is None:
            return handover.agencies[0] if len(handover.agencies) == 1 else None
        return self.agency if self.agency in handover.agencies else None

    @classmethod
    def refusal(cls, case: Case) -> Refusal | None:
        if not any(c.handover for c in case.definition.checkpoints):
            return Refusal(cls.operation, "no_handovers")
        return super().refusal(case)

    def refused(self, case: Case) -> Refusal | None:
        """Also: ``code`` is a handover checkpoint whose step is open, without an open task; on consent, the agency's
        consent covers the checkpoint's scope and the step is active; else the legal basis is one for its agency."""
        refused = super().refused(case)
        if refused is not None:
            return refused
        checkpoint = case.definition.checkpoint.get(self.code)
        if checkpoint is None or checkpoint.handover is None:
            return Refusal(self.operation, "not_handover", {"code": self.code}, argument="code")
        handover = checkpoint.handover
        agency = self.receiver(handover)
        if agency is None:
            return Refusal(self.operation, "agency_choice", {"code": self.code, "valid": list(handover.agencies)},
                           argument="agency")
        refused = case.step_refusal(self.code, self.operation)
        if refused is not None:
            return refused
        if any(t.code == self.code and t.is_open for t in case.handovers):
            return Refusal(self.operation, "handover_open", {"code": self.code})
        if self.legal_basis is None:
            consent = case.consents.get(agency)
            missing = consent.covers(handover.scope) if consent else list(handover.scope)
            if missing:
                return Refusal(self.operation, "consent_missing", {"agency": agency, "missing_scope": list(missing)})
            # On consent, the step must be active (it waits for what it needs): a legal basis does not wait.
            return case.step_refusal(self.code, self.operation, trigger="complete")
        valid = case.definition.legal_bases_for(agency)
        if self.legal_basis not in valid:
            return Refusal(self.operation, "basis_invalid", {"basis": self.legal_basis, "agency": agency,
                                                             "valid": list(valid)}, argument="legal_basis")
        return None

    def reason_required(self, case: Case) -> bool:
        return self.legal_basis is not None  # a handover without consent documents why

    def run(self, case: Case, ctx: Context) -> uuid.UUID:
        self.check(case)
        checkpoint = case.definition.checkpoint[self.code]
        handover = checkpoint.handover
        assert handover is not None
        step = case.open_step(self.code, self.operation)
        # On consent the reason is kept as given (events of before hash as they did); on a legal basis it is required.
        reason = text("reason", self.reason, required=True) if self.reason_required(case) else self.reason
        note = text("note", self.note, required=False)
        basis = self.legal_basis or "consent"
        agency = self.receiver(handover)
        assert agency is not None
        task_id = uuid.uuid5(case.id, f"handover#{len(case.handovers) + 1}")

        def apply() -> None:
            if step.state == "pending":  # a legal basis does not wait for consent
                case.activate(step, ctx.at, anchor_at=ctx.at, due_at=case.due(checkpoint, ctx.at))
            case.handovers.append(HandoverTask(
                id=task_id, code=self.code, agency=agency,
                scope=handover.scope if basis == "consent" else (), basis=basis, status="requested",
                created_at=ctx.at, created_by=ctx.actor, due_at=step.due_at, updated_at=ctx.at,
                note=note, urgency=case.risk))
            step.due_at = case.same_day(step, step.due_at)
            case.sync_handover_deadlines()

        # Events of before agencies could be chosen, notes written and risk kept hash as they did: only what is said.
        payload = {"code": self.code, "legal_basis": self.legal_basis,
                   **{k: v for k, v in (("agency", self.agency), ("note", note)) if v is not None}}
        case.record(self.operation, ctx, reason=reason, payload=payload, apply=apply)
        return task_id


@dataclass(frozen=True)
class UpdateHandover(Command, operation="update_handover", action="task.update"):
    """The receiving agency accepts, declines (with a reason) or completes a handover task, now or when it did
    (``effective_at``, recorded after the fact)."""

    task_id: uuid.UUID
    status: str
    note: str | None = None
    effective_at: datetime | None = None
    # The task keeps who answered and what they wrote; an event recorded before it did says nothing here (None), and
    # replays to the state it recorded.
    keeps_answer: bool | None = True

    def run(self, case: Case, ctx: Context) -> None:
        self.check(case)
        task = next((t for t in case.handovers if t.id == self.task_id), None)
        if task is None:
            raise InvalidArgument("task_id", "no such handover task in this case")
        if self.status not in MOVES:
            raise InvalidArgument("status", "must be one of {choices}", choices=list(MOVES))
        if task.status not in MOVES[self.status]:
            raise case.not_allowed("handover " + self.status, "the task is {status}", status=task.status)
        at = effective_at(self.effective_at, case, ctx)
        step = case.latest(task.code)
        due = case.effective_due(step, at) if step is not None and step.is_open else None
        late = self.status == "completed" and due is not None and due < at
        # Declining needs a reason; so does completing after the deadline (the deviation must be documented).
        note = text("note", self.note, required=self.status == "declined" or late,
                    missing=LATE_NOTE_REQUIRED if late else REASON_REQUIRED)

        def apply() -> None:
            task.status, task.updated_at = self.status, at
            if self.keeps_answer:
                task.updated_by = ctx.actor
                task.reply = note if note is not None else task.reply
            if self.status == "completed":
                step = case.latest(task.code)
                if step is not None and step.is_open:
                    if step.state == "pending":
                        case.activate(step, at)
                    case.end(step, "complete", ctx.actor, at)
                case.refresh(at)

        payload = {"task_id": str(self.task_id), "status": self.status, "note": note,
                   **({"keeps_answer": True} if self.keeps_answer else {})}
        case.record(self.operation, ctx, reason=note if self.status == "declined" or late else None,
                    payload=with_effective_at(payload, self.effective_at, at), apply=apply)
