"""The partner agency's page: its own tasks, with exactly what the API's partner view shows, and accept,
decline with a reason, or complete with a note."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from api.deps import Core
from api.problems import describe, names_for
from api.routes import tasks as api
from api.web.auth import see_other
from api.web.i18n import form_errors
from api.web.render import page
from api.web.session import PartnerPage, Posted, Session, language
from pathway.case.values import deadline_status
from pathway.errors import DatabaseError, ForlopError

router = APIRouter(include_in_schema=False)
MOVES = {"accept": ("accepted", None), "decline": ("declined", api.DeclineBody),
         "complete": ("completed", api.CompleteBody)}


@router.get("/tasks")
def task_list(request: Request, core: Core, session: PartnerPage, done: str = "") -> Response:
    return _page(request, core, session, saved=bool(done))


def _page(request: Request, core: Core, session: Session, *, status: int = 200, saved: bool = False,
          failed: str = "", message: str | None = None) -> Response:
    tasks = api.list_tasks(request, core, session.user, status=None, limit=200)
    lang = language(request, session.user)
    now = datetime.now(timezone.utc)
    # How late each task is, by the one rule for late work: only a task still to be answered or done can be late.
    late = {t.id: deadline_status(t.due_at, now, closed=t.status not in ("requested", "accepted")) for t in tasks}
    return page(request, "tasks.html", session, status=status, tasks=tasks, saved=saved, failed=failed,
                message=message, scope_name=names_for(request, lang)["scope"], late=late)


@router.post("/tasks/{task_id}/{move}")
def move_task(request: Request, core: Core, session: PartnerPage, task_id: uuid.UUID, move: str,
              form: Posted) -> Response:
    if move not in MOVES:
        return _page(request, core, session, status=404, failed=str(task_id), message="no such action")
    status, body_type = MOVES[move]
    note: Any = None
    try:
        if body_type is not None:
            body = body_type.model_validate({k: v for k, v in form.items() if k in body_type.model_fields and v})
            note = getattr(body, "reason", None) or getattr(body, "note", None)
        api.move(request, core, session.user, task_id, status, note)
    except ValidationError as exc:
        fields = ", ".join(f"{e['loc']}: {e['msg']}" for e in form_errors(exc, language(request, session.user)))
        return _page(request, core, session, status=422, failed=str(task_id), message=fields)
    except DatabaseError:  # the database's state, or a bug: the app's problem page answers it, not this form
        raise
    except ForlopError as exc:
        lang = language(request, session.user)
        code, detail, _, _ = describe(exc, lang, names_for(request, lang))
        if code == 404:
            raise
        return _page(request, core, session, status=code, failed=str(task_id), message=detail)
    return see_other(f"/tasks?done={move}")
