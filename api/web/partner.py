"""The partner agency's page: its own tasks, with exactly what the API's partner view shows (what the agency needs to
act: urgency, the basis in words, whom to call and their phone, the coordinator's note, the name and safe contact
channel where the consent shares them, the answer), a page at a time and filtered as the API filters them, and accept,
decline with a reason, or complete with a note."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from api import partner_tasks as api
from api.deps import Core
from api.i18n import N_
from api.problems import describe, names_for
from api.web.auth import see_other
from api.web.i18n import form_errors
from api.web.render import page
from api.web.session import PartnerPage, Posted, Session, language
from pathway.case import HANDOVER_STATUSES, OPEN_HANDOVER
from pathway.case.values import deadline_status
from pathway.errors import DatabaseError, ForlopError

router = APIRouter(include_in_schema=False)
MOVES = {"accept": ("accepted", None), "decline": ("declined", api.DeclineBody),
         "complete": ("completed", api.CompleteBody)}
PAGE_SIZE = 50
# What a partner can pick to see: its name, the list's filter (status, overdue) and which counts add up to it.
CHOICES = [(N_("Open"), (("open",), False), OPEN_HANDOVER), (N_("Overdue"), ((), True), ("overdue",)),
           (N_("Accepted"), (("accepted",), False), ("accepted",)),
           (N_("Completed"), (("completed",), False), ("completed",)),
           (N_("Declined"), (("declined",), False), ("declined",)),
           (N_("Cancelled"), (("cancelled",), False), ("cancelled",)),
           (N_("All"), ((), False), HANDOVER_STATUSES)]
Statuses = Annotated[list[api.TaskStatus] | None, Query()]
Cursor = Annotated[str | None, Query(max_length=500)]


@dataclass(frozen=True, slots=True)
class Shown:
    """Which of the tasks the page shows: the filter and the page (the cursor), as its address says."""

    status: tuple[str, ...] = ()
    overdue: bool = False
    cursor: str | None = None

    def query(self, **changes: Any) -> str:
        """The address's query for this filter and page (``cursor=None``: the first page), with ``changes``."""
        params = {"status": list(self.status), "overdue": "true" if self.overdue else None, "cursor": self.cursor,
                  **changes}
        given = urlencode({k: v for k, v in params.items() if v}, doseq=True)
        return f"?{given}" if given else ""


@router.get("/tasks")
def task_list(request: Request, core: Core, session: PartnerPage, status: Statuses = None, overdue: bool = False,
              cursor: Cursor = None, done: str = "") -> Response:
    return _page(request, core, session, Shown(tuple(status or ()), overdue, cursor), saved=bool(done))


def _page(request: Request, core: Core, session: Session, shown: Shown, *, status: int = 200, saved: bool = False,
          failed: str = "", message: str | None = None) -> Response:
    lang = language(request, session.user)
    listed = api.task_list(request, core, session.user, status=list(shown.status), overdue=shown.overdue,
                           cursor=shown.cursor, limit=PAGE_SIZE, lang=lang)
    now = datetime.now(timezone.utc)
    tasks = listed.items
    # How late each task is, by the one rule for late work: only a task still to be answered or done can be late.
    late = {t.id: deadline_status(t.due_at, now, closed=t.status not in OPEN_HANDOVER) for t in tasks}
    counts = listed.counts.model_dump()
    picked = (tuple(sorted(shown.status)), shown.overdue)
    choices = [(label, "/tasks" + Shown(filter_status, filter_overdue).query(), sum(counts[c] for c in counted),
                picked == (tuple(sorted(filter_status)), filter_overdue))
               for label, (filter_status, filter_overdue), counted in CHOICES]
    return page(request, "tasks.html", session, status=status, tasks=tasks, saved=saved, failed=failed,
                message=message, late=late, choices=choices, open_statuses=OPEN_HANDOVER,
                next_cursor=listed.next, paged=shown.cursor is not None, here=shown.query(),
                link=lambda cursor=None: "/tasks" + shown.query(cursor=cursor))


@router.post("/tasks/{task_id}/{move}")
def move_task(request: Request, core: Core, session: PartnerPage, task_id: uuid.UUID, move: str,
              form: Posted, status: Statuses = None, overdue: bool = False, cursor: Cursor = None) -> Response:
    shown = Shown(tuple(status or ()), overdue, cursor)  # the page the form was on: where the answer returns
    if move not in MOVES:
        return _page(request, core, session, shown, status=404, failed=str(task_id), message="no such action")
    new_status, body_type = MOVES[move]
    note: Any = None
    try:
        if body_type is not None:
            body = body_type.model_validate({k: v for k, v in form.items() if k in body_type.model_fields and v})
            note = getattr(body, "reason", None) or getattr(body, "note", None)
        api.move(request, core, session.user, task_id, new_status, note)
    except ValidationError as exc:
        fields = ", ".join(f"{e['loc']}: {e['msg']}" for e in form_errors(exc, language(request, session.user)))
        return _page(request, core, session, shown, status=422, failed=str(task_id), message=fields)
    except DatabaseError:  # the database's state, or a bug: the app's problem page answers it, not this form
        raise
    except ForlopError as exc:
        lang = language(request, session.user)
        code, detail, _, _ = describe(exc, lang, names_for(request, lang))
        if code == 404:
            raise
        return _page(request, core, session, shown, status=code, failed=str(task_id), message=detail)
    return see_other("/tasks" + shown.query(done=move))
