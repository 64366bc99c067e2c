"""Partner agencies' routes: their own agency's handover tasks, with only what each handover needs.

A task of another agency, or any id that is not a task of the caller's agency, answers 404 (never 403), so that the
existence of a case is not revealed.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from api.deps import Core, Partner
from api.fhir import task_resource
from api.partner_tasks import (
    AcceptBody, CompleteBody, DeclineBody, TaskList, TaskOut, TaskStatus, move, one_task, task_list, task_out,
)
from pathway.views.tasks import MAX_PAGE, PAGE

router = APIRouter(prefix="/api/v1/tasks", tags=["partner tasks"])


@router.get("", response_model=TaskList, summary="My agency's handover tasks, a page at a time")
def list_tasks(request: Request, response: Response, core: Core, user: Partner,
               status: Annotated[list[TaskStatus] | None, Query(
                   description="one or more; open is requested and accepted")] = None,
               overdue: Annotated[bool, Query(description="only the open ones past their deadline")] = False,
               cursor: Annotated[str | None, Query(max_length=500)] = None,
               limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = PAGE) -> TaskList:
    listed = task_list(request, core, user, status=status, overdue=overdue, cursor=cursor, limit=limit)
    if listed.next:
        response.headers["Link"] = f'<{request.url.include_query_params(cursor=listed.next)}>; rel="next"'
    return listed


@router.get("/{task_id}", response_model=TaskOut, summary="One handover task")
def get_task(request: Request, core: Core, user: Partner, task_id: uuid.UUID) -> TaskOut:
    return task_out(one_task(request, core, user, task_id, "task.read", logged=True), user.language)


@router.get("/{task_id}/fhir", summary="The task as an HL7 FHIR R4 Task resource")
def get_task_fhir(request: Request, core: Core, user: Partner, task_id: uuid.UUID) -> dict[str, Any]:
    view = one_task(request, core, user, task_id, "task.read_fhir", logged=True)
    return task_resource(view, base_url=core.settings.public_url)


@router.post("/{task_id}/accept", response_model=TaskOut, summary="Accept a handover task")
def accept(request: Request, core: Core, user: Partner, task_id: uuid.UUID,
           body: AcceptBody | None = None) -> TaskOut:
    return move(request, core, user, task_id, "accepted", None, effective_at=body.effective_at if body else None)


@router.post("/{task_id}/decline", response_model=TaskOut, summary="Decline a handover task, with a reason")
def decline(request: Request, core: Core, user: Partner, task_id: uuid.UUID, body: DeclineBody) -> TaskOut:
    return move(request, core, user, task_id, "declined", body.reason, effective_at=body.effective_at)


@router.post("/{task_id}/complete", response_model=TaskOut, summary="Complete a handover task, with a note")
def complete(request: Request, core: Core, user: Partner, task_id: uuid.UUID, body: CompleteBody) -> TaskOut:
    return move(request, core, user, task_id, "completed", body.note, effective_at=body.effective_at)
