"""What the partner agencies' API routes and page share: a task as the agency sees it, the page of its tasks with
their counts (the reading logged), and its answer to a task (the write logged).

A task of another agency, or any id that is not a task of the caller's agency, is a 404 (never 403), so that the
existence of a case is not revealed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Annotated, Literal, get_args

from fastapi import Request
from pydantic import BaseModel, Field

from api.access import access_writer, channel, log_access, refused
from api.i18n import N_, gettext
from api.problems import status_for
from pathway import policy, services
from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.case import HANDOVER_STATUSES
from pathway.views.tasks import PAGE, PartnerTaskView, agency_tasks, task_counts, task_page

# A task's urgency (the case's threat level when it was sent), in words.
URGENCY = {"low": N_("Low"), "medium": N_("Medium"), "high": N_("High")}


class TaskOut(BaseModel):
    """What the agency needs to act on one task, and nothing more: never an address or a birth date, the person's
    name and safe contact channel only under a consent that shares them."""

    id: uuid.UUID
    case_reference: str = Field(examples=["BGO-2026-0042"])
    code: str = Field(examples=["K6"])
    task: str = Field(description="what the handover is about", examples=["Overlevering til politiet"])
    asked: list[str] = Field(description="of what the task asks to share, what the consent shares now (scope codes)")
    asked_names: list[str] = Field(description="the same, named in the user's language",
                                   examples=[["Navn", "Trygg kontaktkanal", "Trusselvurdering"]])
    basis: str = Field(description="consent, or the legal basis used without consent")
    basis_name: str = Field(description="the basis in words, in the user's language; a legal basis with its law",
                            examples=["Samtykke", "Opplysningsplikt til barnevernet (barnevernsloven § 13-2)"])
    without_consent: bool = Field(description="sent without the person's consent, on the legal basis named")
    status: str
    due_at: datetime | None
    urgency: str | None = Field(description="the case's threat level when the task was sent (low, medium or high); "
                                            "null if none was recorded", examples=["high"])
    urgency_name: str | None = Field(description="the same in words, in the user's language", examples=["Høy"])
    same_day: bool = Field(description="at this urgency the agency acts the same day: the task is due the end of the "
                                       "day it was sent (Oslo time)")
    contact: str = Field(description="who to call at the crisis centre: the coordinator and their unit",
                         examples=["koordinator (Bergen sentrum)"])
    coordinator: str | None = Field(description="the case's coordinator; null before one is assigned",
                                    examples=["koordinator"])
    phone: str | None = Field(description="the coordinator's work phone, where they gave one",
                              examples=["+47 099 00 001"])
    note: str | None = Field(description="the coordinator's note to the agency, written at the handover",
                             examples=["Ring før kl. 15"])
    person_name: str | None = Field(description="only when the consent's scope includes the name")
    safe_contact: str | None = Field(
        description="the person's safe contact channel: only when the consent's scope includes contact; never an "
                    "address", examples=["+47 400 00 000, bare SMS"])
    withheld: list[str] = Field(
        description="of what the task asked to share, what the consent no longer shares (scope codes): it was "
                    "narrowed or withdrawn after the handover", examples=[["name"]])
    withheld_names: list[str] = Field(description="the same, named in the user's language", examples=[["Navn"]])
    consent_changed_at: datetime | None = Field(
        description="when the consent was last changed; given when something is withheld")
    answered_by: str | None = Field(description="who at the agency last answered (accepted, declined or completed)",
                                    examples=["politi"])
    reply: str | None = Field(description="what they wrote: the reason for declining, or the note on completing",
                              examples=["kontakt opprettet"])


def task_out(view: PartnerTaskView, lang: str) -> TaskOut:
    en = lang == "en"
    return TaskOut(id=view.id, case_reference=view.case_reference, code=view.code,
                   task=view.title_en if en else view.title_nb, asked=list(view.scope),
                   asked_names=list(view.scope_en if en else view.scope_nb), basis=view.basis,
                   basis_name=view.basis_en if en else view.basis_nb, without_consent=view.basis != "consent",
                   status=view.status, due_at=view.due_at, urgency=view.urgency,
                   urgency_name=gettext(lang)(URGENCY[view.urgency]) if view.urgency in URGENCY else None,
                   same_day=view.same_day, contact=view.contact, coordinator=view.coordinator, phone=view.phone,
                   note=view.note, person_name=view.person_name, safe_contact=view.safe_contact,
                   withheld=list(view.withheld), withheld_names=list(view.withheld_en if en else view.withheld_nb),
                   consent_changed_at=view.consent_changed_at, answered_by=view.answered_by, reply=view.reply)


def one_task(request: Request, core: Forlop, user: User, task_id: uuid.UUID, action: str, *,
         logged: bool = False) -> PartnerTaskView:
    """One task of the caller's agency, with the access-log row of its read in the read's transaction if ``logged``;
    any other id is a 404, and the refused attempt is in the access log."""
    with core.uow(snapshot=logged, read_only=not logged) as uow:
        found = agency_tasks(uow.conn, agency=policy.task_agency(user), catalog=core.catalog, keys=core.keys,
                             task_id=task_id, unit_name=core.settings.unit_name)
        if found and logged:
            access_writer(request, user, action, case_reference=found[0].case_reference, task_id=task_id)(uow.conn)
            uow.commit()
    if not found:
        raise refused(core.engine, request, user, action, "task", task_id, task_id=task_id)
    return found[0]


# The statuses a list can be filtered by: HANDOVER_STATUSES and "open" (requested or accepted), spelled out for the
# API's schema; the assertion keeps the two the same.
TaskStatus = Literal["requested", "accepted", "declined", "completed", "cancelled", "open"]
assert set(get_args(TaskStatus)) == {*HANDOVER_STATUSES, "open"}


class TaskCounts(BaseModel):
    """How many of the agency's tasks are in each status (all of them, whatever the filters)."""

    requested: int
    accepted: int
    declined: int
    completed: int
    cancelled: int
    overdue: int = Field(description="of the open ones (requested or accepted), those past their deadline")


class TaskList(BaseModel):
    items: list[TaskOut] = Field(description="the open tasks first, by deadline (those without one last), then the "
                                             "others, the last changed first")
    next: str | None = Field(description="pass as ?cursor= for the next page (also in the Link header); null on the "
                                         "last page")
    counts: TaskCounts


def task_list(request: Request, core: Forlop, user: User, *, status: Sequence[str] | None = None,
              overdue: bool = False, cursor: str | None = None, limit: int = PAGE, lang: str | None = None) -> TaskList:
    """A page of the agency's tasks and their counts (the API's answer and the tasks page), in ``lang`` (default: the
    user's language); the page, the counts and the access-log rows are one transaction."""
    now = datetime.now(timezone.utc)
    agency = policy.task_agency(user)
    # a cursor the API did not hand out is an InvalidArgument (422), said in the caller's language
    with core.uow(snapshot=True) as uow:
        listed = task_page(uow.conn, agency=agency, catalog=core.catalog, keys=core.keys, now=now,
                           status=status or None, overdue=overdue, cursor=cursor, limit=limit,
                           unit_name=core.settings.unit_name)
        counts = task_counts(uow.conn, agency=agency, now=now)
        # One row per case shown (its reference, and the name where the consent allows it), as for a case read.
        access_writer(request, user, "task.list", shown=[(t.case_reference, t.id) for t in listed.items])(uow.conn)
        uow.commit()
    return TaskList(items=[task_out(t, lang or user.language) for t in listed.items], next=listed.next_cursor,
                    counts=TaskCounts(**counts))


class AcceptBody(BaseModel):
    """A reply to a task; each may be recorded after the fact."""

    effective_at: datetime | None = Field(
        default=None, description="when the agency replied, where it is recorded after the fact: not after now, nor "
                                  "before the case's previous change (at is when it was recorded)")


class DeclineBody(AcceptBody):
    reason: Annotated[str, Field(min_length=1, max_length=2000, examples=["ikke vår kommune"])]


class CompleteBody(AcceptBody):
    note: Annotated[str | None, Field(default=None, max_length=2000, examples=["kontakt opprettet"])] = None


def move(request: Request, core: Forlop, user: User, task_id: uuid.UUID, status: str, note: str | None, *,
         effective_at: datetime | None = None) -> TaskOut:
    """Accept, decline or complete one of the agency's tasks (the API's and the page's way), now or when it was done
    (``effective_at``: recorded after the fact, as the command checks it); the write, or its refusal, is logged."""
    view = one_task(request, core, user, task_id, f"task.{status}")
    try:
        services.answer_task(
            uow=core.uow(), reference=view.case_reference, task_id=task_id, status=status, note=note,
            effective_at=effective_at, actor=user.username, channel=channel(request),
            public_url=core.settings.public_url,
            also=access_writer(request, user, f"task.{status}", case_reference=view.case_reference, task_id=task_id))
    except Exception as exc:
        log_access(core.engine, request, user, f"task.{status}", case_reference=view.case_reference, task_id=task_id,
                   status=status_for(exc))
        raise
    return task_out(one_task(request, core, user, task_id, f"task.{status}"), user.language)
