"""The case aggregate: one person's way through a pathway.

A case holds its phase (a state of the definition's shared phase machine), its steps (each with the small
pending → active → done/skipped/cancelled lifecycle of ``STEP_MACHINE``), consents, milestones and handover
tasks. Every operation checks everything first, then changes the case and appends one ``Event`` carrying the
operation's arguments, so that replaying the events on a fresh case rebuilds it exactly. An operation that is
not allowed raises a ``DomainError`` and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from transitions import MachineError

from pathway.calendar import Unit, shift
from pathway.definition import CONSENT_PREFIX, FIRST_CONTACT, Checkpoint, Offset, PathwayDefinition
from pathway.errors import (
    ConsentRequired,
    DomainError,
    InvalidArgument,
    OperationNotAllowed,
    UnknownCheckpoint,
)
from pathway.machine import CLOSE_EARLY, OPEN_STEP_STATES, compile_pathway, step_transition

LEGAL_BASES = {
    # legal basis -> the agency it allows contacting without consent
    "avert_crime": "police",  # straffeloven §196, avvergingsplikt
    "child_welfare_duty": "child_welfare",  # opplysningsplikt til barnevernet
}
HANDOVER_STATUSES = ("requested", "accepted", "declined", "completed", "cancelled")
_HANDOVER_MOVES = {
    "accepted": {"requested"},
    "declined": {"requested", "accepted"},
    "completed": {"requested", "accepted"},
}
BACKDATE_TOLERANCE = timedelta(hours=1)
MAX_TEXT = 2000
GENESIS = "0" * 64


# Every time a case is given lies in this window: deadlines and reminder rungs reach years beyond it
# (offsets are bounded to ten years), and year 1 or 9999 would overflow datetime on the way.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)


def utc(at: datetime, field_name: str = "at") -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidArgument(field_name, "timestamps must carry a time zone")
    if not EARLIEST <= at < LATEST:
        raise InvalidArgument(field_name, f"must lie between {EARLIEST.year} and {LATEST.year}")
    return at.astimezone(timezone.utc)


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(timezone.utc).isoformat()


def parse_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass(slots=True)
class Step:
    """One occurrence of a checkpoint, or an ad-hoc step. ``state`` is driven by ``STEP_MACHINE``."""

    id: uuid.UUID
    code: str
    occurrence: int
    owner: str
    created_at: datetime
    state: str = "pending"
    adhoc: bool = False
    title: str | None = None
    anchor_at: datetime | None = None
    due_at: datetime | None = None
    activated_at: datetime | None = None
    ended_at: datetime | None = None
    ended_by: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STEP_STATES

    def overdue(self, now: datetime) -> bool:
        return self.is_open and self.due_at is not None and self.due_at < now


@dataclass(slots=True)
class Consent:
    agency: str
    scope: tuple[str, ...]
    given: bool
    recorded_at: datetime
    recorded_by: str

    def covers(self, scope: Iterable[str]) -> list[str]:
        """The part of ``scope`` this consent does not cover (empty: all covered)."""
        return [s for s in scope if not self.given or s not in self.scope]


def shareable(task_scope: Iterable[str], basis: str, consent_scope: Iterable[str] | None) -> tuple[str, ...]:
    """What of a handover task's scope its agency may be shown now. Consent is read when the task is read, not only
    when it was created: a consent narrowed after the handover narrows what every open task shows at once, and a
    withdrawn one (``None``) shows nothing. A task on a legal basis shares no consent scope."""
    allowed = set(consent_scope or ()) if basis == "consent" else set()
    return tuple(s for s in task_scope if s in allowed)


@dataclass(slots=True)
class HandoverTask:
    id: uuid.UUID
    code: str
    agency: str
    scope: tuple[str, ...]
    basis: str  # "consent" or a key of LEGAL_BASES
    status: str
    created_at: datetime
    created_by: str
    due_at: datetime | None
    updated_at: datetime

    @property
    def is_open(self) -> bool:
        return self.status in ("requested", "accepted")


@dataclass(frozen=True, slots=True)
class Event:
    """An append-only record of one operation: who, when, what, why, and the state before and after."""

    case_id: uuid.UUID
    seq: int
    at: datetime
    actor: str
    operation: str
    reason: str | None
    payload: dict[str, Any]
    state_before: dict[str, Any]
    state_after: dict[str, Any]
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        return {
            "case_id": str(self.case_id),
            "seq": self.seq,
            "at": iso(self.at),
            "actor": self.actor,
            "operation": self.operation,
            "reason": self.reason,
            "payload": self.payload,
            "state_before": self.state_before,
            "state_after": self.state_after,
        }


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def event_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(body)).hexdigest()


def _text(field_name: str, value: str | None, *, required: bool,
          missing: str = "a reason is required for this operation") -> str | None:
    if value is not None:
        value = value.strip()
    if not value:
        if required:
            raise InvalidArgument(field_name, missing)
        return None
    if len(value) > MAX_TEXT:
        raise InvalidArgument(field_name, f"longer than {MAX_TEXT} characters")
    return value


def _actor(actor: str) -> str:
    if not actor or not actor.strip() or len(actor) > 200:
        raise InvalidArgument("actor", "who made the change must be given (1–200 characters)")
    return actor.strip()


@dataclass(eq=False)
class Case:
    """The case aggregate. Create with ``Case.open``; rebuild from events with ``replay``."""

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
    version: int = 0
    head_hash: str = GENESIS
    new_events: list[Event] = field(default_factory=list)

    # -- opening ---------------------------------------------------------------------------------------

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
    ) -> Case:
        """Open a case at first contact. A first contact more than an hour before ``at`` is backdating: give a reason."""
        first_contact_at, at = utc(first_contact_at, "first_contact_at"), utc(at)
        actor = _actor(actor)
        if first_contact_at > at + BACKDATE_TOLERANCE:
            raise InvalidArgument("first_contact_at", "first contact cannot lie in the future")
        reason = _text("reason", reason, required=first_contact_at < at - BACKDATE_TOLERANCE,
                       missing="first contact lies more than an hour back: give the reason for backdating")
        conditions = sorted(set(conditions))
        for cond in conditions:
            if cond not in definition.conditions:
                raise InvalidArgument("conditions", f"unknown condition '{cond}'")
        if not unit or len(unit) > 64:
            raise InvalidArgument("unit", "a unit (1–64 characters) is required")
        case = cls(
            id=case_id,
            reference=reference,
            definition=definition,
            unit=unit,
            opened_at=first_contact_at,
            phase=definition.initial_phase,
            conditions=set(conditions),
        )
        payload = {
            "pathway": definition.id,
            "version": definition.version,
            "reference": reference,
            "unit": unit,
            "first_contact_at": iso(first_contact_at),
            "conditions": conditions,
        }

        def apply() -> None:
            case._refresh(first_contact_at)
            for step in case.steps:
                checkpoint = definition.checkpoint.get(step.code)
                if checkpoint is not None and checkpoint.completed_by == "open":
                    case._end(step, "complete", actor, first_contact_at)
            case._refresh(at)

        case._record("open", actor=actor, at=at, reason=reason, payload=payload, apply=apply)
        return case

    # -- operations ------------------------------------------------------------------------------------

    def complete(self, code: str, *, actor: str, at: datetime, note: str | None = None) -> None:
        """Mark the open occurrence of a checkpoint (or an ad-hoc step) done."""
        at, actor = utc(at), _actor(actor)
        self._require_open("complete")
        step = self._open_step(code, "complete")
        checkpoint = self.definition.checkpoint.get(code)
        if checkpoint is not None and checkpoint.completed_by != "manual":
            raise self._not_allowed(
                "complete", f"'{code}' is completed by the '{checkpoint.completed_by}' operation, not by hand"
            )
        if step.state != "active":
            raise self._not_allowed("complete", f"'{code}' is waiting ({self._waiting_for(step)})")
        due = self._effective_due(step, at)
        late = due is not None and due < at
        # A missed deadline is allowed, but its reason must be documented: the note becomes the event's reason.
        note = _text("note", note, required=late,
                     missing="the deadline has passed: give the reason for the deviation as a note")
        self._record(
            "complete", actor=actor, at=at, reason=note if late else None, payload={"code": code, "note": note},
            apply=lambda: self._end(step, "complete", actor, at),
        )

    def skip(self, code: str, *, actor: str, at: datetime, reason: str) -> None:
        """Mark a checkpoint not applicable for this person (an individual adaptation)."""
        at, actor = utc(at), _actor(actor)
        self._require_open("skip")
        self._require_adaptation("skip")
        reason = _text("reason", reason, required=True)
        step = self._open_step(code, "skip")
        checkpoint = self.definition.checkpoint.get(code)
        if checkpoint is not None and not checkpoint.skippable:
            raise self._not_allowed("skip", f"checkpoint '{code}' cannot be skipped")
        self._record(
            "skip", actor=actor, at=at, reason=reason, payload={"code": code},
            apply=lambda: self._end(step, "skip", actor, at),
        )

    def add_step(
        self, *, title: str, owner: str, due_at: datetime, actor: str, at: datetime, reason: str
    ) -> str:
        """Add an ad-hoc step with its own deadline; returns its code (A1, A2, ...)."""
        at, actor, due_at = utc(at), _actor(actor), utc(due_at, "due_at")
        self._require_open("add_step")
        self._require_adaptation("add_step")
        reason = _text("reason", reason, required=True)
        title = _text("title", title, required=True)
        if owner not in self.definition.roles and owner not in self.definition.agencies:
            raise InvalidArgument("owner", f"unknown owner '{owner}' (not a role or an agency)")
        code = f"A{sum(1 for s in self.steps if s.adhoc) + 1}"

        def apply() -> None:
            step = self._new_step(code, 1, owner, at, adhoc=True, title=title)
            step.anchor_at, step.due_at = at, due_at
            step_transition("activate", step)
            step.activated_at = at

        self._record(
            "add_step", actor=actor, at=at, reason=reason,
            payload={"code": code, "title": title, "owner": owner, "due_at": iso(due_at)}, apply=apply,
        )
        return code

    def pause(self, *, actor: str, at: datetime, reason: str) -> None:
        """Stop the clock (person unreachable, in hospital, asks for a delay). Paused time moves due times."""
        at, actor = utc(at), _actor(actor)
        self._require_open("pause")
        self._require_adaptation("pause")
        if self.paused_since is not None:
            raise self._not_allowed("pause", "the clock is already paused")
        reason = _text("reason", reason, required=True)

        def apply() -> None:
            self.paused_since = at

        self._record("pause", actor=actor, at=at, reason=reason, payload={}, apply=apply)

    def resume(self, *, actor: str, at: datetime, reason: str | None = None) -> None:
        """Restart the clock; every open deadline moves by the time the clock stood still."""
        at, actor = utc(at), _actor(actor)
        self._require_open("resume")
        if self.paused_since is None:
            raise self._not_allowed("resume", "the clock is not paused")
        if at < self.paused_since:
            raise InvalidArgument("at", "resume cannot precede the pause")
        reason = _text("reason", reason, required=False)

        def apply() -> None:
            assert self.paused_since is not None
            for step in self.steps:
                if step.is_open and step.due_at is not None:
                    # Only the part of the pause after the anchor counted against this deadline.
                    start = max(self.paused_since, step.anchor_at or self.paused_since)
                    step.due_at += max(at - start, timedelta(0))
            self.paused_since = None
            self._sync_handover_deadlines()

        self._record("resume", actor=actor, at=at, reason=reason, payload={}, apply=apply)

    def advance(self, trigger: str, *, actor: str, at: datetime, reason: str | None = None) -> None:
        """Fire a phase transition of the definition (forward, or back to an earlier stage with a reason)."""
        at, actor = utc(at), _actor(actor)
        self._require_open(trigger)
        transition = self.definition.transition.get(trigger)
        compiled = compile_pathway(self.definition)
        if transition is None or self.phase not in transition.sources:
            raise self._not_allowed(trigger)
        if transition.dest in self.definition.final_phases:
            raise self._not_allowed(trigger, "use close with an outcome code to end the case")
        returning = transition.kind == "return"
        if returning:
            self._require_adaptation("return")
        reason = _text("reason", reason, required=returning)
        missing = self._missing(transition.requires)
        if missing:
            raise self._not_allowed(trigger, f"first complete or skip: {', '.join(missing)}")

        def apply() -> None:
            source = self.phase
            if not compiled.fire(trigger, self):
                raise AssertionError("phase machine refused a checked transition")
            if transition.records:
                self.milestones[transition.records] = at
            if returning:
                self._return_to(source, transition.dest, at, actor)
            self._refresh(at)

        self._record("advance", actor=actor, at=at, reason=reason, payload={"trigger": trigger}, apply=apply)

    def record_milestone(self, name: str, *, when: datetime, actor: str, at: datetime, reason: str | None = None) -> None:
        """Record (or move) a milestone such as a planned move-out date; deadlines anchored on it follow."""
        at, actor, when = utc(at), _actor(actor), utc(when, "when")
        self._require_open("record_milestone")
        if name not in self.definition.milestones:
            raise InvalidArgument("name", f"unknown milestone '{name}'")
        reason = _text("reason", reason, required=False)

        def apply() -> None:
            self.milestones[name] = when
            self._reanchor(name)
            self._refresh(at)

        self._record(
            "record_milestone", actor=actor, at=at, reason=reason,
            payload={"name": name, "when": iso(when)}, apply=apply,
        )

    def record_consent(
        self, agency: str, *, scope: Iterable[str], given: bool, actor: str, at: datetime, reason: str | None = None
    ) -> None:
        """Record the person's consent to share with one agency (or its withdrawal, which stops future handovers)."""
        at, actor = utc(at), _actor(actor)
        self._require_open("record_consent")
        if agency not in self.definition.agencies:
            raise InvalidArgument("agency", f"unknown agency '{agency}'")
        scope = tuple(sorted(set(scope)))
        for s in scope:
            if s not in self.definition.consent_scopes:
                raise InvalidArgument("scope", f"unknown consent scope '{s}'")
        if given and not scope:
            raise InvalidArgument("scope", "consent must name what may be shared")
        reason = _text("reason", reason, required=False)

        def apply() -> None:
            previous = self.consents.get(agency)
            self.consents[agency] = Consent(agency, scope if given else (), given, at, actor)
            if not given:
                for task in self.handovers:
                    if task.agency == agency and task.basis == "consent" and task.is_open:
                        task.status, task.updated_at = "cancelled", at
            elif previous is None or not previous.given:
                self._reanchor(CONSENT_PREFIX + agency)
            for step in self._open_steps_completed_by("consent"):
                self._end(step, "complete", actor, at)
            self._refresh(at)

        self._record(
            "record_consent", actor=actor, at=at, reason=reason,
            payload={"agency": agency, "scope": list(scope), "given": given}, apply=apply,
        )

    def assign_coordinator(self, coordinator: str, *, actor: str, at: datetime, reason: str | None = None) -> None:
        at, actor = utc(at), _actor(actor)
        self._require_open("assign_coordinator")
        coordinator = _text("coordinator", coordinator, required=True) or ""
        reason = _text("reason", reason, required=self.coordinator is not None)

        def apply() -> None:
            self.coordinator = coordinator
            for step in self._open_steps_completed_by("assign_coordinator"):
                self._end(step, "complete", actor, at)
            self._refresh(at)

        self._record(
            "assign_coordinator", actor=actor, at=at, reason=reason, payload={"coordinator": coordinator},
            apply=apply,
        )

    def set_condition(self, name: str, value: bool, *, actor: str, at: datetime, reason: str) -> None:
        """Change a fact that decides which checkpoints apply (e.g. children turn out to be part of the case)."""
        at, actor = utc(at), _actor(actor)
        self._require_open("set_condition")
        if name not in self.definition.conditions:
            raise InvalidArgument("name", f"unknown condition '{name}'")
        reason = _text("reason", reason, required=True)
        if (name in self.conditions) == value:
            raise InvalidArgument("value", f"condition '{name}' is already {'set' if value else 'unset'}")

        def apply() -> None:
            if value:
                self.conditions.add(name)
            else:
                self.conditions.discard(name)
            self._refresh(at)

        self._record(
            "set_condition", actor=actor, at=at, reason=reason, payload={"name": name, "value": value},
            apply=apply,
        )

    def create_handover(
        self, code: str, *, actor: str, at: datetime, legal_basis: str | None = None, reason: str | None = None
    ) -> uuid.UUID:
        """Create a handover task for a handover checkpoint's agency. Needs valid consent or a recorded legal basis."""
        at, actor = utc(at), _actor(actor)
        self._require_open("create_handover")
        checkpoint = self.definition.checkpoint.get(code)
        if checkpoint is None or checkpoint.handover is None:
            raise InvalidArgument("code", f"'{code}' is not a handover checkpoint")
        step = self._open_step(code, "create_handover")
        agency = checkpoint.handover.agency
        if any(t.code == code and t.is_open for t in self.handovers):
            raise self._not_allowed("create_handover", f"an open handover task for '{code}' exists already")
        if legal_basis is None:
            consent = self.consents.get(agency)
            missing = consent.covers(checkpoint.handover.scope) if consent else list(checkpoint.handover.scope)
            if missing:
                raise ConsentRequired(agency, missing)
            if step.state != "active":
                raise self._not_allowed("create_handover", f"'{code}' is waiting ({self._waiting_for(step)})")
            basis = "consent"
        else:
            if LEGAL_BASES.get(legal_basis) != agency:
                allowed = [k for k, v in LEGAL_BASES.items() if v == agency]
                raise InvalidArgument(
                    "legal_basis",
                    f"'{legal_basis}' is not a legal basis for contacting '{agency}' "
                    f"(valid: {', '.join(allowed) or 'none; consent is required'})",
                )
            reason = _text("reason", reason, required=True)
            basis = legal_basis
        number = len(self.handovers) + 1
        task_id = uuid.uuid5(self.id, f"handover#{number}")

        def apply() -> None:
            if step.state == "pending":  # a legal basis does not wait for consent
                step.anchor_at = at
                step.due_at = self._due(self.definition.checkpoint[code], step, at)
                step_transition("activate", step)
                step.activated_at = at
            self.handovers.append(
                HandoverTask(
                    id=task_id, code=code, agency=agency,
                    scope=checkpoint.handover.scope if basis == "consent" else (),
                    basis=basis, status="requested", created_at=at, created_by=actor,
                    due_at=step.due_at, updated_at=at,
                )
            )

        self._record(
            "create_handover", actor=actor, at=at, reason=reason,
            payload={"code": code, "legal_basis": legal_basis}, apply=apply,
        )
        return task_id

    def update_handover(
        self, task_id: uuid.UUID, status: str, *, actor: str, at: datetime, note: str | None = None
    ) -> None:
        """The receiving agency accepts, declines (with a reason) or completes a handover task."""
        at, actor = utc(at), _actor(actor)
        self._require_open("update_handover")
        task = next((t for t in self.handovers if t.id == task_id), None)
        if task is None:
            raise InvalidArgument("task_id", "no such handover task in this case")
        if status not in _HANDOVER_MOVES:
            raise InvalidArgument("status", f"must be one of {', '.join(_HANDOVER_MOVES)}")
        if task.status not in _HANDOVER_MOVES[status]:
            raise self._not_allowed(f"handover {status}", f"the task is {task.status}")
        step = self._latest(task.code)
        due = self._effective_due(step, at) if step is not None and step.is_open else None
        late = status == "completed" and due is not None and due < at
        # Declining needs a reason; so does completing after the deadline (the deviation must be documented).
        note = _text("note", note, required=status == "declined" or late,
                     missing="the deadline has passed: give the reason for the deviation as a note" if late
                     else "a reason is required for this operation")

        def apply() -> None:
            task.status, task.updated_at = status, at
            if status == "completed":
                step = self._latest(task.code)
                if step is not None and step.is_open:
                    if step.state == "pending":
                        step_transition("activate", step)
                        step.activated_at = at
                    self._end(step, "complete", actor, at)
                self._refresh(at)

        self._record(
            "update_handover", actor=actor, at=at, reason=note if status == "declined" or late else None,
            payload={"task_id": str(task_id), "status": status, "note": note}, apply=apply,
        )

    def close(self, outcome: str, *, actor: str, at: datetime, reason: str | None = None) -> None:
        """Close with an outcome code: normally from a stage that leads to closure, early with a reason."""
        self._close("close", outcome, actor=actor, at=at, reason=reason, payload={"outcome": outcome})

    def transfer(self, municipality: str, *, actor: str, at: datetime, reason: str) -> None:
        """Transfer the person to another municipality: closes this case with the outcome 'transferred'."""
        self._require_open("transfer")
        self._require_adaptation("transfer")
        municipality = _text("municipality", municipality, required=True) or ""
        if "transferred" not in self.definition.outcomes:
            raise InvalidArgument("outcome", "this pathway has no 'transferred' outcome")
        self._close(
            "transfer", "transferred", actor=actor, at=at, reason=_text("reason", reason, required=True),
            payload={"municipality": municipality}, early=True,
            also=lambda: setattr(self, "transferred_to", municipality),
        )

    def migrate(
        self, definition: PathwayDefinition, mapping: dict[str, str], *, actor: str, at: datetime, reason: str
    ) -> None:
        """Move the case to another version of its pathway, renaming checkpoint codes by ``mapping``."""
        at, actor = utc(at), _actor(actor)
        self._require_open("migrate")
        reason = _text("reason", reason, required=True)
        unmapped = sorted({s.code for s in self.steps if not s.adhoc} - set(mapping))
        if unmapped:
            raise InvalidArgument("mapping", f"checkpoints in use are not mapped: {', '.join(unmapped)}")
        unknown = sorted(v for v in mapping.values() if v not in definition.checkpoint)
        if unknown:
            raise InvalidArgument("mapping", f"not checkpoints of the new version: {', '.join(unknown)}")
        if self.phase not in definition.phase_order:
            raise InvalidArgument("mapping", f"the new version has no phase '{self.phase}'")

        def apply() -> None:
            self.definition = definition
            for step in self.steps:
                if not step.adhoc:
                    step.code = mapping[step.code]
            for task in self.handovers:
                task.code = mapping.get(task.code, task.code)
            self._refresh(at)

        self._record(
            "migrate", actor=actor, at=at, reason=reason,
            payload={"pathway": definition.id, "version": definition.version, "mapping": dict(sorted(mapping.items()))},
            apply=apply,
        )

    def note_person_change(self, fields: Iterable[str], *, actor: str, at: datetime, reason: str | None = None) -> None:
        """Record that the encrypted person record changed; the event names the fields, never their values."""
        at, actor = utc(at), _actor(actor)
        fields = sorted(set(fields))
        if not fields:
            raise InvalidArgument("fields", "no field changed")
        reason = _text("reason", reason, required=False)
        self._record("person_updated", actor=actor, at=at, reason=reason, payload={"fields": fields}, apply=lambda: None)

    # -- questions -------------------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self.phase in self.definition.final_phases

    def allowed_operations(self) -> list[str]:
        """What can be done to the case now, for error messages and the UI."""
        if self.is_closed:
            return []
        d = self.definition
        ops = ["complete", "record_consent", "record_milestone", "assign_coordinator", "set_condition"]
        ops += [f"advance:{t}" for t in compile_pathway(d).triggers(self.phase)
                if d.transition[t].dest not in d.final_phases
                and (d.transition[t].kind != "return" or "return" in d.adaptations)]
        if any(c.handover for c in d.checkpoints):
            ops.append("create_handover")
        ops += [a for a in ("skip", "add_step", "transfer") if a in d.adaptations]
        ops.append(("resume" if self.paused_since else "pause") if "pause" in d.adaptations else "")
        if self._close_is_normal() or "close_early" in d.adaptations:
            ops.append("close")
        return [op for op in ops if op]

    def open_steps(self) -> list[Step]:
        return [s for s in self.steps if s.is_open]

    def next_deadline(self) -> datetime | None:
        dues = [s.due_at for s in self.steps if s.is_open and s.due_at is not None]
        return min(dues) if dues else None

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain data: what replay must reproduce exactly."""
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
                [str(t.id), t.code, t.agency, list(t.scope), t.basis, t.status, iso(t.created_at), t.created_by,
                 iso(t.due_at), iso(t.updated_at)]
                for t in self.handovers
            ],
            "steps": [
                [str(s.id), s.code, s.occurrence, s.owner, s.state, s.adhoc, s.title, iso(s.created_at),
                 iso(s.anchor_at), iso(s.due_at), iso(s.activated_at), iso(s.ended_at), s.ended_by]
                for s in self.steps
            ],
            "closed_at": iso(self.closed_at),
            "outcome": self.outcome,
            "transferred_to": self.transferred_to,
            "version": self.version,
        }

    def digest(self) -> str:
        return hashlib.sha256(canonical(self.snapshot())).hexdigest()

    # -- internals -------------------------------------------------------------------------------------

    def _record(
        self, operation: str, *, actor: str, at: datetime, reason: str | None, payload: dict[str, Any],
        apply: Callable[[], None],
    ) -> None:
        before = self._summary() if self.version else {}
        apply()
        self.version += 1
        after = self._summary()
        event = Event(
            case_id=self.id, seq=self.version, at=at, actor=actor, operation=operation, reason=reason,
            payload=payload, state_before=before, state_after=after, prev_hash=self.head_hash, hash="",
        )
        event = replace(event, hash=event_hash(self.head_hash, event.body()))
        self.head_hash = event.hash
        self.new_events.append(event)

    def _summary(self) -> dict[str, Any]:
        # Small enough to read in a timeline; the digest pins the whole state for replay checks.
        return {"phase": self.phase, "paused": self.paused_since is not None, "digest": self.digest()}

    def _not_allowed(self, operation: str, detail: str = "") -> OperationNotAllowed:
        return OperationNotAllowed(operation, stage=self.phase, allowed=self.allowed_operations(), detail=detail)

    def _require_open(self, operation: str) -> None:
        if self.is_closed:
            raise self._not_allowed(operation, "the case is closed")

    def _require_adaptation(self, adaptation: str) -> None:
        if adaptation not in self.definition.adaptations:
            raise self._not_allowed(adaptation, "this pathway does not allow that adaptation")

    def _close_is_normal(self) -> bool:
        d = self.definition
        return any(d.transition[t].dest in d.final_phases for t in compile_pathway(d).triggers(self.phase))

    def _close(
        self, operation: str, outcome: str, *, actor: str, at: datetime, reason: str | None,
        payload: dict[str, Any], early: bool = False, also: Callable[[], None] | None = None,
    ) -> None:
        at, actor = utc(at), _actor(actor)
        self._require_open(operation)
        if outcome not in self.definition.outcomes:
            raise InvalidArgument("outcome", f"unknown outcome code; valid: {', '.join(self.definition.outcomes)}")
        compiled = compile_pathway(self.definition)
        normal = not early and self._close_is_normal()
        if not normal:
            self._require_adaptation("close_early" if operation == "close" else operation)
        reason = _text("reason", reason, required=not normal)
        trigger = next(
            (t for t in compiled.triggers(self.phase)
             if self.definition.transition[t].dest in self.definition.final_phases),
            CLOSE_EARLY,
        ) if normal else CLOSE_EARLY
        missing = self._missing(self.definition.transition[trigger].requires) if trigger != CLOSE_EARLY else []
        if missing:
            raise self._not_allowed(operation, f"first complete or skip: {', '.join(missing)}")

        def apply() -> None:
            closing = self._open_steps_completed_by("close")
            if not compiled.fire(trigger, self):
                raise AssertionError("phase machine refused a checked transition")
            for step in closing:
                if step.state == "pending":
                    step_transition("activate", step)
                    step.activated_at = at
                self._end(step, "complete", actor, at)
            for step in self.steps:
                if step.is_open:
                    self._end(step, "cancel", actor, at)
            for task in self.handovers:
                if task.is_open:
                    task.status, task.updated_at = "cancelled", at
            self.paused_since = None
            self.closed_at, self.outcome = at, outcome
            if also is not None:
                also()

        self._record(operation, actor=actor, at=at, reason=reason, payload={**payload}, apply=apply)

    def requirements_met(self, event_data: Any) -> bool:
        """Condition of every phase transition (named by string in the machine)."""
        transition = self.definition.transition.get(event_data.event.name)
        return transition is None or not self._missing(transition.requires)

    def _missing(self, codes: Iterable[str]) -> list[str]:
        missing = []
        for code in codes:
            step = self._latest(code)
            if step is not None and step.state not in ("done", "skipped", "cancelled"):
                missing.append(code)
        return missing

    def _latest(self, code: str) -> Step | None:
        latest = None
        for step in self.steps:
            if step.code == code and (latest is None or step.occurrence > latest.occurrence):
                latest = step
        return latest

    def _open_step(self, code: str, operation: str) -> Step:
        step = self._latest(code)
        if step is None:
            if code in self.definition.checkpoint:
                raise self._not_allowed(operation, f"checkpoint '{code}' does not apply yet in this case")
            raise UnknownCheckpoint(code)
        if not step.is_open:
            raise self._not_allowed(operation, f"'{code}' is already {step.state}")
        return step

    def _open_steps_completed_by(self, how: str) -> list[Step]:
        return [
            s for s in self.steps
            if s.is_open and not s.adhoc and self.definition.checkpoint[s.code].completed_by == how
        ]

    def _waiting_for(self, step: Step) -> str:
        checkpoint = self.definition.checkpoint[step.code]
        missing = self._missing(checkpoint.needs)
        if missing:
            return f"needs {', '.join(missing)}"
        if checkpoint.deadline is not None:
            return f"waits for {checkpoint.deadline.after}"
        return "not active"

    def _new_step(self, code: str, occurrence: int, owner: str, at: datetime, *, adhoc: bool = False,
                  title: str | None = None) -> Step:
        step_id = uuid.uuid5(self.id, f"{code}#{occurrence}")
        if any(s.id == step_id for s in self.steps):
            # A migration renamed the step that had this code (K8 -> K9) and the new version gives the code to another
            # checkpoint: this step needs an id of its own, the same on every replay (its position never changes).
            step_id = uuid.uuid5(self.id, f"{code}#{occurrence}@{len(self.steps)}")
        step = Step(
            id=step_id, code=code, occurrence=occurrence, owner=owner,
            created_at=at, adhoc=adhoc, title=title,
        )
        self.steps.append(step)
        return step

    def _effective_due(self, step: Step, at: datetime) -> datetime | None:
        """The deadline at ``at``: while the clock is paused, the pause so far (after the anchor) does not count."""
        if step.due_at is None or self.paused_since is None:
            return step.due_at
        start = max(self.paused_since, step.anchor_at or self.paused_since)
        return step.due_at + max(at - start, timedelta(0))

    def _end(self, step: Step, trigger: str, actor: str, at: datetime) -> None:
        due = self._effective_due(step, at)
        try:
            step_transition(trigger, step)
        except MachineError as exc:
            raise self._not_allowed(trigger, f"'{step.code}' is {step.state}") from exc
        step.due_at = due  # ended during a pause: its deadline moves as a resume would have moved it
        step.ended_at, step.ended_by = at, actor
        if trigger == "complete" and not step.adhoc:
            self._schedule_repeat(step, at)

    def _schedule_repeat(self, step: Step, at: datetime) -> None:
        checkpoint = self.definition.checkpoint[step.code]
        if not checkpoint.repeat or self.phase not in checkpoint.phases:
            return
        rule = checkpoint.repeat_interval(step.occurrence + 1)
        if rule is None:
            return
        nxt = self._new_step(step.code, step.occurrence + 1, checkpoint.owners[0], at)
        nxt.anchor_at = at
        nxt.due_at = shift(at, rule.amount, rule.unit)
        step_transition("activate", nxt)
        nxt.activated_at = at

    def _anchor(self, anchor: str) -> datetime | None:
        if anchor == FIRST_CONTACT:
            return self.opened_at
        if anchor in self.definition.checkpoint:
            step = self._latest(anchor)
            return step.ended_at if step is not None and step.state == "done" else None
        if anchor.startswith(CONSENT_PREFIX):
            consent = self.consents.get(anchor[len(CONSENT_PREFIX):])
            return consent.recorded_at if consent is not None and consent.given else None
        return self.milestones.get(anchor)

    def _due(self, checkpoint: Checkpoint, step: Step, anchor_at: datetime) -> datetime | None:
        if checkpoint.deadline is None:
            return None
        return shift(anchor_at, checkpoint.deadline.amount, checkpoint.deadline.unit)

    def _reanchor(self, anchor: str) -> None:
        """An anchor moved (a milestone re-planned, consent given again): open steps on it get new deadlines."""
        for step in self.steps:
            checkpoint = self.definition.checkpoint.get(step.code)
            if (step.state == "active" and checkpoint is not None and checkpoint.deadline is not None
                    and checkpoint.deadline.after == anchor and step.occurrence == 1):
                anchor_at = self._anchor(anchor)
                if anchor_at is not None:
                    step.anchor_at = anchor_at
                    step.due_at = self._due(checkpoint, step, anchor_at)
        self._sync_handover_deadlines()

    def _sync_handover_deadlines(self) -> None:
        for task in self.handovers:
            if task.is_open:
                step = self._latest(task.code)
                if step is not None and step.is_open:
                    task.due_at = step.due_at

    def _return_to(self, source: str, dest: str, at: datetime, actor: str) -> None:
        """Going back: checkpoints of the stage returned to start again; those only of later stages stop."""
        order = self.definition.phase_order
        for t in self.definition.transitions:
            if t.records and any(order[s] >= order[dest] for s in t.sources):
                self.milestones.pop(t.records, None)
        for checkpoint in self.definition.checkpoints:
            # Reopen only work that is redone with the person; an assigned coordinator stays assigned.
            if checkpoint.completed_by not in ("manual", "consent") or checkpoint.repeat:
                continue
            step = self._latest(checkpoint.code)
            if step is None:
                continue
            first = min(order[p] for p in checkpoint.phases)
            if step.is_open and first > order[dest]:
                self._end(step, "cancel", actor, at)
            elif not step.is_open and step.state != "cancelled" and first >= order[dest] and dest in checkpoint.phases:
                self._new_step(checkpoint.code, step.occurrence + 1, checkpoint.owners[0], at)
            elif step.state == "cancelled" and dest in checkpoint.phases:
                self._new_step(checkpoint.code, step.occurrence + 1, checkpoint.owners[0], at)

    def _refresh(self, at: datetime) -> None:
        """Create the steps that now apply and activate those whose needs and anchor are met."""
        if self.is_closed:
            return
        for checkpoint in self.definition.checkpoints:
            step = self._latest(checkpoint.code)
            applies = all(c in self.conditions for c in checkpoint.when)
            if step is None:
                if applies and self.phase in checkpoint.phases:
                    step = self._new_step(checkpoint.code, 1, checkpoint.owners[0], at)
                else:
                    continue
            if not applies and step.is_open:
                self._end(step, "cancel", "system", at)
                continue
            # In an open case a step is cancelled only because its condition lapsed or the case went back to an
            # earlier stage: either way the checkpoint applies again once its condition and stage do.
            if step.state == "cancelled" and applies and self.phase in checkpoint.phases:
                step = self._new_step(checkpoint.code, step.occurrence + 1, checkpoint.owners[0], at)
            if step.state != "pending" or self._missing(checkpoint.needs):
                continue
            if checkpoint.deadline is None:
                anchor_at = None
            else:
                anchor_at = self._anchor(checkpoint.deadline.after)
                if anchor_at is None:
                    continue
                if step.occurrence > 1:
                    anchor_at = max(anchor_at, step.created_at)
            step.anchor_at = anchor_at
            step.due_at = self._due(checkpoint, step, anchor_at) if anchor_at is not None else None
            step_transition("activate", step)
            step.activated_at = at


# -- replay ------------------------------------------------------------------------------------------------

Resolver = Callable[[str, int], PathwayDefinition]


def replay(events: Iterable[Event | dict[str, Any]], resolve: Resolver) -> Case:
    """Rebuild a case from its events by running each operation again; checks every state digest on the way."""
    case: Case | None = None
    for raw in events:
        e = raw if isinstance(raw, Event) else Event(**raw)
        p, at = e.payload, e.at
        if case is None:
            if e.operation != "open":
                raise DomainError(f"event {e.seq}: a case's first event must be 'open'")
            case = Case.open(
                resolve(p["pathway"], p["version"]), case_id=e.case_id, reference=p["reference"], unit=p["unit"],
                first_contact_at=parse_iso(p["first_contact_at"]), actor=e.actor, at=at,
                conditions=p["conditions"], reason=e.reason,
            )
        elif e.operation == "migrate":
            case.migrate(resolve(p["pathway"], p["version"]), p["mapping"], actor=e.actor, at=at, reason=e.reason or "")
        elif e.operation in _REPLAY:
            _REPLAY[e.operation](case, e)
        else:
            raise DomainError(f"event {e.seq}: unknown operation '{e.operation}'")
        produced = case.new_events[-1]
        if produced.hash != e.hash:
            raise DomainError(f"event {e.seq} ({e.operation}): replay does not reproduce the recorded state")
        # The recorded event must also hash to its own hash and link to the one before (its stored
        # state_before/state_after, seq and prev_hash are not inputs to the operation, so check them here).
        if e.prev_hash != produced.prev_hash or event_hash(e.prev_hash, e.body()) != e.hash:
            raise DomainError(f"event {e.seq} ({e.operation}): the recorded event does not match its hash")
    if case is None:
        raise DomainError("no events to replay")
    case.new_events.clear()
    return case


_REPLAY: dict[str, Callable[[Case, Event], Any]] = {
    "complete": lambda c, e: c.complete(e.payload["code"], actor=e.actor, at=e.at, note=e.payload["note"]),
    "skip": lambda c, e: c.skip(e.payload["code"], actor=e.actor, at=e.at, reason=e.reason or ""),
    "add_step": lambda c, e: c.add_step(
        title=e.payload["title"], owner=e.payload["owner"], due_at=parse_iso(e.payload["due_at"]),
        actor=e.actor, at=e.at, reason=e.reason or ""),
    "pause": lambda c, e: c.pause(actor=e.actor, at=e.at, reason=e.reason or ""),
    "resume": lambda c, e: c.resume(actor=e.actor, at=e.at, reason=e.reason),
    "advance": lambda c, e: c.advance(e.payload["trigger"], actor=e.actor, at=e.at, reason=e.reason),
    "record_milestone": lambda c, e: c.record_milestone(
        e.payload["name"], when=parse_iso(e.payload["when"]), actor=e.actor, at=e.at, reason=e.reason),
    "record_consent": lambda c, e: c.record_consent(
        e.payload["agency"], scope=e.payload["scope"], given=e.payload["given"], actor=e.actor, at=e.at,
        reason=e.reason),
    "assign_coordinator": lambda c, e: c.assign_coordinator(
        e.payload["coordinator"], actor=e.actor, at=e.at, reason=e.reason),
    "set_condition": lambda c, e: c.set_condition(
        e.payload["name"], e.payload["value"], actor=e.actor, at=e.at, reason=e.reason or ""),
    "create_handover": lambda c, e: c.create_handover(
        e.payload["code"], actor=e.actor, at=e.at, legal_basis=e.payload["legal_basis"], reason=e.reason),
    "update_handover": lambda c, e: c.update_handover(
        uuid.UUID(e.payload["task_id"]), e.payload["status"], actor=e.actor, at=e.at, note=e.payload["note"]),
    "person_updated": lambda c, e: c.note_person_change(e.payload["fields"], actor=e.actor, at=e.at, reason=e.reason),
    "close": lambda c, e: c.close(e.payload["outcome"], actor=e.actor, at=e.at, reason=e.reason),
    "transfer": lambda c, e: c.transfer(e.payload["municipality"], actor=e.actor, at=e.at, reason=e.reason or ""),
}
