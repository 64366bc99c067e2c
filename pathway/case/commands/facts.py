"""Commands that record facts about the person and the case: milestones, consents, the coordinator, conditions,
and that the (encrypted) person record changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pathway.case.commands.base import Command, Context, arg, effective_at, with_effective_at
from pathway.case.values import MAX_TEXT, Consent, iso, text, utc
from pathway.definition import CONSENT_PREFIX, RISK_LEVELS
from pathway.errors import N_, InvalidArgument

if TYPE_CHECKING:
    from pathway.case.aggregate import Case


@dataclass(frozen=True)
class RecordMilestone(Command, operation="record_milestone", action="case.milestone", route="/milestones/{name}",
                      target="name", summary="Record a milestone (e.g. planned move-out)"):
    """Record (or move) a milestone such as a planned move-out date; deadlines anchored on it follow."""

    name: str = arg(max_length=64, example="move_out_planned")
    when: datetime = arg()
    reason: str | None = arg(None, max_length=MAX_TEXT)

    def run(self, case: Case, ctx: Context) -> None:
        when = utc(self.when, "when")
        self.check(case)
        if self.name not in case.definition.milestones:
            raise InvalidArgument("name", "unknown milestone '{name}'", name=self.name)
        reason = text("reason", self.reason, required=False)

        def apply() -> None:
            case.milestones[self.name] = when
            case.reanchor(self.name)
            case.refresh(ctx.at)

        case.record(self.operation, ctx, reason=reason, payload={"name": self.name, "when": iso(when)}, apply=apply)


@dataclass(frozen=True)
class RecordConsent(Command, operation="record_consent", action="case.consent", route="/consents/{agency}",
                    target="agency", summary="Record consent for an agency (or withdraw it)"):
    """Record the person's consent to share with one agency (or its withdrawal, which stops future handovers), now
    or when it was given (``effective_at``, recorded after the fact): deadlines counted from consent start then."""

    agency: str = arg(max_length=64, example="police")
    scope: tuple[str, ...] = arg((), max_items=20, max_length=64, example=["name", "contact", "threat_assessment"])
    given: bool = arg(True)
    reason: str | None = arg(None, max_length=MAX_TEXT)
    effective_at: datetime | None = arg(None)

    def run(self, case: Case, ctx: Context) -> None:
        self.check(case)
        agency = self.agency
        if agency not in case.definition.agencies:
            raise InvalidArgument("agency", "unknown agency '{agency}'", agency=agency)
        scope = tuple(sorted(set(self.scope)))
        for s in scope:
            if s not in case.definition.consent_scopes:
                raise InvalidArgument("scope", "unknown consent scope '{scope}'", scope=s)
        if self.given and not scope:
            raise InvalidArgument("scope", "consent must name what may be shared")
        reason = text("reason", self.reason, required=False)
        at = effective_at(self.effective_at, case, ctx)

        def apply() -> None:
            previous = case.consents.get(agency)
            case.consents[agency] = Consent(agency, scope if self.given else (), self.given, at, ctx.actor)
            if not self.given:
                for task in case.handovers:
                    if task.agency == agency and task.basis == "consent" and task.is_open:
                        task.status, task.updated_at = "cancelled", at
            elif previous is None or not previous.given:
                case.reanchor(CONSENT_PREFIX + agency)
            for step in case.open_steps_completed_by("consent"):
                case.end(step, "complete", ctx.actor, at)
            case.refresh(at)

        payload = {"agency": agency, "scope": list(scope), "given": self.given}
        case.record(self.operation, ctx, reason=reason, payload=with_effective_at(payload, self.effective_at, at),
                    apply=apply)


@dataclass(frozen=True)
class AssignCoordinator(Command, operation="assign_coordinator", action="case.coordinator", route="/coordinator",
                        summary="Assign the case's coordinator"):
    """Assign the coordinator who holds the whole picture; changing an assigned one needs a reason."""

    coordinator: str = arg(min_length=1, max_length=64, example="koordinator")
    reason: str | None = arg(None, max_length=MAX_TEXT)

    def run(self, case: Case, ctx: Context) -> None:
        self.check(case)
        coordinator = text("coordinator", self.coordinator, required=True) or ""
        reason = text("reason", self.reason, required=self.reason_required(case))

        def apply() -> None:
            case.coordinator = coordinator
            for step in case.open_steps_completed_by("assign_coordinator"):
                case.end(step, "complete", ctx.actor, ctx.at)
            case.refresh(ctx.at)

        case.record(self.operation, ctx, reason=reason, payload={"coordinator": coordinator}, apply=apply)

    def reason_required(self, case: Case) -> bool:
        return case.coordinator is not None  # changing an assigned coordinator says why


@dataclass(frozen=True)
class RecordRisk(Command, operation="record_risk", action="case.risk", route="/risk",
                 summary="Record the threat level of a threat assessment (K1, or reassessed later)"):
    """Record the threat level the latest threat assessment found: low, medium or high. A handover sent after it
    carries it as its urgency; at high risk the police's handover is due the same day."""

    level: str = arg(choices=RISK_LEVELS, example="high")
    reason: str | None = arg(None, max_length=MAX_TEXT)

    def run(self, case: Case, ctx: Context) -> None:
        self.check(case)
        if self.level not in RISK_LEVELS:
            raise InvalidArgument("level", "must be one of {choices}", choices=list(RISK_LEVELS))
        reason = text("reason", self.reason, required=self.reason_required(case))

        def apply() -> None:
            case.risk = self.level

        case.record(self.operation, ctx, reason=reason, payload={"level": self.level}, apply=apply)

    def reason_required(self, case: Case) -> bool:
        return case.risk is not None and case.risk != self.level  # a changed assessment says why (high to low too)


@dataclass(frozen=True)
class SetCondition(Command, operation="set_condition", action="case.condition", route="/conditions/{name}",
                   target="name", summary="Set or clear a condition (e.g. children)"):
    """Change a fact that decides which checkpoints apply (e.g. children turn out to be part of the case)."""

    name: str = arg(max_length=64, example="children")
    value: bool = arg()
    reason: str = arg(min_length=1, max_length=MAX_TEXT, example="barn registrert")

    def run(self, case: Case, ctx: Context) -> None:
        self.check(case)
        if self.name not in case.definition.conditions:
            raise InvalidArgument("name", "unknown condition '{name}'", name=self.name)
        reason = text("reason", self.reason, required=True)
        if (self.name in case.conditions) == self.value:
            raise InvalidArgument("value", N_("condition '{name}' is already set") if self.value else
                                  N_("condition '{name}' is already unset"), name=self.name)

        def apply() -> None:
            if self.value:
                case.conditions.add(self.name)
            else:
                case.conditions.discard(self.name)
            case.refresh(ctx.at)

        case.record(self.operation, ctx, reason=reason, payload={"name": self.name, "value": self.value}, apply=apply)


@dataclass(frozen=True)
class NotePersonChange(Command, operation="person_updated", action="person.write"):
    """Record that the encrypted person record changed; the event names the fields, never their values."""

    fields: tuple[str, ...]
    reason: str | None = None

    def run(self, case: Case, ctx: Context) -> None:
        fields = sorted(set(self.fields))
        if not fields:
            raise InvalidArgument("fields", "no field changed")
        reason = text("reason", self.reason, required=False)
        case.record(self.operation, ctx, reason=reason, payload={"fields": fields}, apply=lambda: None)


@dataclass(frozen=True)
class NoteChildPathway(Command, operation="child_pathway_opened", action="case.children"):
    """Record on the adult's case that a child's pathway was opened as part of it: the adult's timeline names the
    child's pathway by its reference (``pathway.services.children``), never the child."""

    reference: str

    def run(self, case: Case, ctx: Context) -> None:
        self.check(case)
        if case.part_of is not None:
            raise InvalidArgument("reference", "a child's pathway has no pathways of its own")
        case.record(self.operation, ctx, reason=None, payload={"reference": self.reference}, apply=lambda: None)
