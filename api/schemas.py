"""Response shapes of the API (pydantic), built from the domain objects."""

from __future__ import annotations

from datetime import datetime
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field, computed_field

from pathway.case import Case, Event
from pathway.definition import PathwayDefinition
from pathway.views.children import ChildPathway
from pathway.views.deadlines import deadline_status


OLD_NAME = "the old name of phase, kept for clients written against it"


class UrgentStep(BaseModel):
    """A case's most urgent open step: the one with the earliest deadline."""

    code: str = Field(examples=["K2"])
    name: str = Field(description="the checkpoint's name in the user's language (an ad-hoc step's title)")
    adhoc: bool
    due_at: datetime


class HandoverAlert(BaseModel):
    """A handover that needs the coordinator: declined by the agency (while its step is open), or unanswered past
    its deadline."""

    code: str = Field(examples=["K6"])
    agency: str = Field(examples=["police"])
    status: str = Field(examples=["declined"], description="declined or unanswered")
    due_at: datetime | None


class CaseSummary(BaseModel):
    reference: str = Field(examples=["BGO-2026-0042"])
    pathway: str = Field(default="", examples=["krisesenter"], description="the pathway's id (an adult's, a child's)")
    pathway_title: str | None = Field(default=None, description="the pathway's title, in the reader's language")
    phase: str = Field(examples=["support"])
    unit: str
    coordinator: str | None
    opened_at: datetime
    closed_at: datetime | None
    paused: bool
    next_due_at: datetime | None
    overdue: bool
    due_soon: bool
    version: int
    urgent_step: UrgentStep | None = None
    handover_alerts: list[HandoverAlert] = Field(default_factory=list)

    @computed_field(description=OLD_NAME, json_schema_extra={"deprecated": True})  # type: ignore[prop-decorator]
    @property
    def stage(self) -> str:
        return self.phase


class CaseList(BaseModel):
    items: list[CaseSummary]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")
    total: int | None = Field(default=None, description="how many cases match the filters (all pages)")
    before: int | None = Field(default=None, description="how many of them come before this page")


class StepOut(BaseModel):
    code: str
    occurrence: int
    name: str
    owner: str
    state: str
    adhoc: bool
    due_at: datetime | None
    overdue: bool
    due_soon: bool
    ended_at: datetime | None
    ended_by: str | None


EFFECTIVE_AT = ("when the change took effect, where it was recorded after the fact (at is when it was recorded); "
                "the case's deadlines and figures count from this time")


class EventOut(BaseModel):
    """One entry of the case's timeline, as it reads: what happened when, by whom, how the phase moved, and why."""

    seq: int
    at: datetime
    operation: str
    actor: str
    channel: str | None = Field(default=None, description="where the change came from: api, web, cli, scheduler")
    phase_before: str | None
    phase_after: str | None
    reason: str | None
    payload: dict[str, Any]

    @computed_field(description=EFFECTIVE_AT)  # type: ignore[prop-decorator]
    @property
    def effective_at(self) -> datetime | None:
        value = self.payload.get("effective_at")
        return datetime.fromisoformat(value) if isinstance(value, str) else None

    @computed_field(description=OLD_NAME, json_schema_extra={"deprecated": True})  # type: ignore[prop-decorator]
    @property
    def stage_before(self) -> str | None:
        return self.phase_before

    @computed_field(description=OLD_NAME, json_schema_extra={"deprecated": True})  # type: ignore[prop-decorator]
    @property
    def stage_after(self) -> str | None:
        return self.phase_after


class ConsentOut(BaseModel):
    agency: str
    given: bool
    scope: list[str]
    recorded_at: datetime
    recorded_by: str


class HandoverOut(BaseModel):
    id: str
    code: str
    agency: str
    basis: str
    status: str
    due_at: datetime | None
    created_at: datetime
    updated_at: datetime
    note: str | None = None  # the coordinator's note to the agency
    urgency: str | None = None  # the case's threat level when the task was sent
    updated_by: str | None = None  # who last answered (accepted, declined, completed) or cancelled it
    reply: str | None = None  # the agency's reason for declining, or its note on completing


class EmergencyAccessOut(BaseModel):
    username: str
    reason: str
    granted_at: datetime


class ChildPathwayOut(BaseModel):
    """A child's pathway as the adult's case lists it (the child's record is read apart: ``GET .../children``)."""

    reference: str
    pathway: str
    pathway_title: str
    phase: str
    phase_title: str
    coordinator: str | None
    opened_at: datetime
    paused: bool
    closed_at: datetime | None
    next_due_at: datetime | None
    overdue: bool
    due_soon: bool


class CaseDetail(BaseModel):
    reference: str
    pathway: str
    pathway_version: int
    phase: str
    phase_title: str
    unit: str
    coordinator: str | None
    version: int
    opened_at: datetime
    paused_since: datetime | None
    closed_at: datetime | None
    outcome: str | None
    risk: str | None = None  # the threat level of the latest threat assessment (low, medium, high)
    conditions: list[str]
    milestones: dict[str, datetime]
    next_due_at: datetime | None
    steps: list[StepOut]
    consents: list[ConsentOut]
    handovers: list[HandoverOut]
    timeline: list[EventOut]
    allowed_operations: list[str]
    emergency_access: list[EmergencyAccessOut]
    part_of: str | None = Field(default=None, description="a child's pathway: the adult's case it is part of")
    children: list[ChildPathwayOut] = Field(default_factory=list, description="the children's pathways of the case")

    @computed_field(description=OLD_NAME, json_schema_extra={"deprecated": True})  # type: ignore[prop-decorator]
    @property
    def stage(self) -> str:
        return self.phase

    @computed_field(description=OLD_NAME, json_schema_extra={"deprecated": True})  # type: ignore[prop-decorator]
    @property
    def stage_title(self) -> str:
        return self.phase_title


def case_detail(case: Case, events: list[Event], grants: list[Any], *, now: datetime, lang: str,
                part_of: str | None = None, children: Sequence[ChildPathway] = (),
                resolve: Callable[[str, int], PathwayDefinition] | None = None) -> CaseDetail:
    """The case as the API and the page show it; ``part_of`` and ``children`` (with ``resolve`` to name their
    pathways and phases) place it in its family of pathways."""
    d = case.definition
    steps = []
    for s in case.steps:
        name = s.title if s.adhoc else d.checkpoint[s.code].name.get(lang)
        deadline = deadline_status(s.due_at, now, closed=not s.is_open)
        steps.append(StepOut(
            code=s.code, occurrence=s.occurrence, name=name or s.code, owner=s.owner, state=s.state, adhoc=s.adhoc,
            due_at=s.due_at, overdue=deadline == "overdue", due_soon=deadline == "due_soon",
            ended_at=s.ended_at, ended_by=s.ended_by))
    phase = next(p for p in d.phases if p.id == case.phase)
    return CaseDetail(
        reference=case.reference, pathway=d.id, pathway_version=d.version, phase=case.phase,
        phase_title=phase.title.get(lang), unit=case.unit, coordinator=case.coordinator, version=case.version,
        opened_at=case.opened_at, paused_since=case.paused_since, closed_at=case.closed_at, outcome=case.outcome,
        risk=case.risk, conditions=sorted(case.conditions), milestones=dict(case.milestones), next_due_at=case.next_deadline(),
        steps=steps,
        consents=[ConsentOut(agency=c.agency, given=c.given, scope=list(c.scope), recorded_at=c.recorded_at,
                             recorded_by=c.recorded_by) for c in case.consents.values()],
        handovers=[HandoverOut(id=str(t.id), code=t.code, agency=t.agency, basis=t.basis, status=t.status,
                               due_at=t.due_at, created_at=t.created_at, updated_at=t.updated_at,
                               note=t.note, urgency=t.urgency, updated_by=t.updated_by, reply=t.reply)
                   for t in case.handovers],
        timeline=[EventOut(seq=e.seq, at=e.at, actor=e.actor, channel=e.channel, operation=e.operation, reason=e.reason,
                           payload=e.payload, phase_before=e.state_before.get("phase"),
                           phase_after=e.state_after.get("phase")) for e in events],
        allowed_operations=case.allowed_operations(),
        emergency_access=[EmergencyAccessOut(username=g.username, reason=g.reason, granted_at=g.granted_at)
                          for g in grants],
        part_of=part_of,
        children=[_child_out(c, resolve, now=now, lang=lang) for c in children] if resolve is not None else [],
    )


def _child_out(c: ChildPathway, resolve: Callable[[str, int], PathwayDefinition], *, now: datetime,
               lang: str) -> ChildPathwayOut:
    definition = resolve(c.pathway_id, c.definition_version)
    phase = next(p for p in definition.phases if p.id == c.phase)
    deadline = deadline_status(c.next_due_at, now, closed=c.closed_at is not None)
    return ChildPathwayOut(reference=c.reference, pathway=c.pathway_id, pathway_title=definition.title.get(lang),
                           phase=c.phase, phase_title=phase.title.get(lang), coordinator=c.coordinator,
                           opened_at=c.opened_at, paused=c.paused_since is not None, closed_at=c.closed_at,
                           next_due_at=c.next_due_at, overdue=deadline == "overdue", due_soon=deadline == "due_soon")
