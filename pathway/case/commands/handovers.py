"""Commands on handover tasks: the coordinator creates one for a partner agency (on consent, or on a legal basis
with a reason); the agency accepts, declines (with a reason) or completes it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pathway.case.commands.base import Command, Context, arg, effective_at, with_effective_at
from pathway.case.values import LATE_NOTE_REQUIRED, LEGAL_BASES, MAX_TEXT, REASON_REQUIRED, HandoverTask, text
from pathway.errors import ConsentRequired, InvalidArgument

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
    legal_basis: str | None = arg(None, choices=tuple(LEGAL_BASES))
    reason: str | None = arg(None, max_length=MAX_TEXT)

    @classmethod
    def refusal(cls, case: Case) -> tuple[str, str] | None:
        if not any(c.handover for c in case.definition.checkpoints):
            return cls.operation, "this pathway has no handover checkpoints"
        return super().refusal(case)

    def run(self, case: Case, ctx: Context) -> uuid.UUID:
        self.check(case)
        checkpoint = case.definition.checkpoint.get(self.code)
        if checkpoint is None or checkpoint.handover is None:
            raise InvalidArgument("code", f"'{self.code}' is not a handover checkpoint")
        handover = checkpoint.handover
        step = case.open_step(self.code, self.operation)
        if any(t.code == self.code and t.is_open for t in case.handovers):
            raise case.not_allowed(self.operation, f"an open handover task for '{self.code}' exists already")
        reason = self.reason
        if self.legal_basis is None:
            consent = case.consents.get(handover.agency)
            missing = consent.covers(handover.scope) if consent else list(handover.scope)
            if missing:
                raise ConsentRequired(handover.agency, missing)
            if step.state != "active":
                raise case.not_allowed(self.operation, f"'{self.code}' is waiting ({case.waiting_for(step)})")
            basis = "consent"
        else:
            if LEGAL_BASES.get(self.legal_basis) != handover.agency:
                allowed = [k for k, v in LEGAL_BASES.items() if v == handover.agency]
                raise InvalidArgument(
                    "legal_basis",
                    f"'{self.legal_basis}' is not a legal basis for contacting '{handover.agency}' "
                    f"(valid: {', '.join(allowed) or 'none; consent is required'})",
                )
            reason = text("reason", reason, required=True)
            basis = self.legal_basis
        task_id = uuid.uuid5(case.id, f"handover#{len(case.handovers) + 1}")

        def apply() -> None:
            if step.state == "pending":  # a legal basis does not wait for consent
                case.activate(step, ctx.at, anchor_at=ctx.at, due_at=case.due(checkpoint, ctx.at))
            case.handovers.append(HandoverTask(
                id=task_id, code=self.code, agency=handover.agency,
                scope=handover.scope if basis == "consent" else (), basis=basis, status="requested",
                created_at=ctx.at, created_by=ctx.actor, due_at=step.due_at, updated_at=ctx.at,
            ))

        case.record(self.operation, ctx, reason=reason, payload={"code": self.code, "legal_basis": self.legal_basis},
                    apply=apply)
        return task_id


@dataclass(frozen=True)
class UpdateHandover(Command, operation="update_handover", action="task.update"):
    """The receiving agency accepts, declines (with a reason) or completes a handover task, now or when it did
    (``effective_at``, recorded after the fact)."""

    task_id: uuid.UUID
    status: str
    note: str | None = None
    effective_at: datetime | None = None

    def run(self, case: Case, ctx: Context) -> None:
        self.check(case)
        task = next((t for t in case.handovers if t.id == self.task_id), None)
        if task is None:
            raise InvalidArgument("task_id", "no such handover task in this case")
        if self.status not in MOVES:
            raise InvalidArgument("status", f"must be one of {', '.join(MOVES)}")
        if task.status not in MOVES[self.status]:
            raise case.not_allowed(f"handover {self.status}", f"the task is {task.status}")
        at = effective_at(self.effective_at, case, ctx)
        step = case.latest(task.code)
        due = case.effective_due(step, at) if step is not None and step.is_open else None
        late = self.status == "completed" and due is not None and due < at
        # Declining needs a reason; so does completing after the deadline (the deviation must be documented).
        note = text("note", self.note, required=self.status == "declined" or late,
                    missing=LATE_NOTE_REQUIRED if late else REASON_REQUIRED)

        def apply() -> None:
            task.status, task.updated_at = self.status, at
            if self.status == "completed":
                step = case.latest(task.code)
                if step is not None and step.is_open:
                    if step.state == "pending":
                        case.activate(step, at)
                    case.end(step, "complete", ctx.actor, at)
                case.refresh(at)

        payload = {"task_id": str(self.task_id), "status": self.status, "note": note}
        case.record(self.operation, ctx, reason=note if self.status == "declined" or late else None,
                    payload=with_effective_at(payload, self.effective_at, at), apply=apply)
