"""Partner agencies' routes: their own agency's handover tasks, with only what each handover needs.

A task of another agency, or any id that is not a task of the caller's agency, answers 404 (never 403), so
that the existence of a case is not revealed.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api.access import access_writer, log_access, log_accesses
from api.problems import status_for
from api.deps import Core, Partner
from api.fhir import PartnerTaskView, task_resource
from pathway.case.commands import UpdateHandover
from pathway.accounts import User
from pathway import services
from pathway.bootstrap import Forlop
from pathway.case import shareable
from pathway.errors import NotFound
from pathway.store.tables import case_t, handover_t

router = APIRouter(prefix="/api/v1/tasks", tags=["partner tasks"])


class TaskOut(BaseModel):
    id: uuid.UUID
    case_reference: str = Field(examples=["BGO-2026-0042"])
    code: str = Field(examples=["K6"])
    task: str = Field(description="what the handover is about", examples=["Overlevering til politiet"])
    asked: list[str] = Field(description="what the person consented to share (scope)")
    basis: str = Field(description="consent, or the legal basis used without consent")
    status: str
    due_at: datetime | None
    contact: str = Field(description="who to call at the crisis centre")
    person_name: str | None = Field(description="only when the consent's scope includes the name")


def _views(core: Forlop, user: User, *, task_id: uuid.UUID | None = None, status: str | None = None,
           limit: int = 100) -> list[PartnerTaskView]:
    query = (sa.select(handover_t, case_t.c.reference, case_t.c.unit, case_t.c.coordinator, case_t.c.pathway_id,
                       case_t.c.definition_version, case_t.c.consents)
             .join(case_t, case_t.c.id == handover_t.c.case_id)
             .where(handover_t.c.agency == user.agency).order_by(handover_t.c.due_at, handover_t.c.id).limit(limit))
    if task_id is not None:
        query = query.where(handover_t.c.id == task_id)
    if status is not None:
        query = query.where(handover_t.c.status == status)
    with core.engine.connect() as conn:
        rows = conn.execute(query).all()
    views = []
    for r in rows:
        d = core.catalog.resolve(r.pathway_id, r.definition_version)
        checkpoint = d.checkpoint.get(r.code)
        consent = r.consents.get(r.agency)
        scope = shareable(r.scope, r.basis, consent["scope"] if consent and consent["given"] else None)
        name = None
        if "name" in scope and r.status in ("requested", "accepted"):
            person = services.read_person(uow=core.uow(), reference=r.reference, keys=core.keys)
            name = person.name if person is not None else None
        views.append(PartnerTaskView(
            id=r.id, case_reference=r.reference, code=r.code,
            title_nb=checkpoint.name.nb if checkpoint else r.code, title_en=checkpoint.name.en if checkpoint else r.code,
            agency=r.agency, agency_name=d.agencies[r.agency].nb if r.agency in d.agencies else r.agency,
            status=r.status, basis=r.basis, scope=scope, due_at=r.due_at, created_at=r.created_at,
            updated_at=r.updated_at, contact=f"{r.coordinator or 'koordinator'} ({r.unit})", person_name=name))
    return views


def _out(view: PartnerTaskView, lang: str) -> TaskOut:
    return TaskOut(id=view.id, case_reference=view.case_reference, code=view.code,
                   task=view.title_en if lang == "en" else view.title_nb, asked=list(view.scope), basis=view.basis,
                   status=view.status, due_at=view.due_at, contact=view.contact, person_name=view.person_name)


def _one(request: Request, core: Forlop, user: User, task_id: uuid.UUID, action: str) -> PartnerTaskView:
    """One task of the caller's agency; any other id is a 404, and the refused attempt is in the access log."""
    views = _views(core, user, task_id=task_id)
    if not views:
        log_access(core.engine, request, user, action, task_id=task_id, status=404)
        raise NotFound("task", task_id)
    return views[0]


@router.get("", response_model=list[TaskOut], summary="My agency's handover tasks")
def list_tasks(request: Request, core: Core, user: Partner,
               status: Literal["requested", "accepted", "declined", "completed", "cancelled"] | None = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[TaskOut]:
    views = _views(core, user, status=status, limit=limit)
    # One row per case shown (its reference, and the name where the consent allows it), as for a case read.
    log_accesses(core.engine, request, user, "task.list", [(v.case_reference, v.id) for v in views])
    return [_out(v, user.language) for v in views]


@router.get("/{task_id}", response_model=TaskOut, summary="One handover task")
def get_task(request: Request, core: Core, user: Partner, task_id: uuid.UUID) -> TaskOut:
    view = _one(request, core, user, task_id, "task.read")
    log_access(core.engine, request, user, "task.read", case_reference=view.case_reference, task_id=task_id)
    return _out(view, user.language)


@router.get("/{task_id}/fhir", summary="The task as an HL7 FHIR R4 Task resource")
def get_task_fhir(request: Request, core: Core, user: Partner, task_id: uuid.UUID) -> dict[str, Any]:
    view = _one(request, core, user, task_id, "task.read_fhir")
    log_access(core.engine, request, user, "task.read_fhir", case_reference=view.case_reference, task_id=task_id)
    return task_resource(view, base_url=core.settings.public_url)


class DeclineBody(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=2000, examples=["ikke vår kommune"])]


class CompleteBody(BaseModel):
    note: Annotated[str | None, Field(default=None, max_length=2000, examples=["kontakt opprettet"])] = None


def move(request: Request, core: Forlop, user: User, task_id: uuid.UUID, status: str, note: str | None) -> TaskOut:
    """Accept, decline or complete one of the agency's tasks (the API's and the page's way); the write is logged."""
    view = _one(request, core, user, task_id, f"task.{status}")
    try:
        services.execute(
            uow=core.uow(), reference=view.case_reference, expected_version=None,
            command=UpdateHandover(task_id, status, note=note), actor=user.username,
            also=access_writer(request, user, f"task.{status}", case_reference=view.case_reference, task_id=task_id))
    except Exception as exc:
        log_access(core.engine, request, user, f"task.{status}", case_reference=view.case_reference, task_id=task_id,
                   status=status_for(exc))
        raise
    return _out(_one(request, core, user, task_id, f"task.{status}"), user.language)


@router.post("/{task_id}/accept", response_model=TaskOut, summary="Accept a handover task")
def accept(request: Request, core: Core, user: Partner, task_id: uuid.UUID) -> TaskOut:
    return move(request, core, user, task_id, "accepted", None)


@router.post("/{task_id}/decline", response_model=TaskOut, summary="Decline a handover task, with a reason")
def decline(request: Request, core: Core, user: Partner, task_id: uuid.UUID, body: DeclineBody) -> TaskOut:
    return move(request, core, user, task_id, "declined", body.reason)


@router.post("/{task_id}/complete", response_model=TaskOut, summary="Complete a handover task, with a note")
def complete(request: Request, core: Core, user: Partner, task_id: uuid.UUID, body: CompleteBody) -> TaskOut:
    return move(request, core, user, task_id, "completed", body.note)
