"""Every user's in-app inbox of reminders: list (one by one, or grouped per case), unread count, mark read or unread
(some, a case's, or all)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import AnyUser, Core
from pathway.store import inbox

router = APIRouter(prefix="/api/v1/inbox", tags=["inbox"])


class NotificationOut(BaseModel):
    id: uuid.UUID
    kind: str
    case_reference: str | None
    step_code: str | None
    unit: str | None
    due_at: datetime
    link: str
    created_at: datetime
    read: bool


class Ids(BaseModel):
    ids: list[uuid.UUID] = Field(min_length=1, max_length=500)


class Count(BaseModel):
    unread: int


class CaseGroup(BaseModel):
    """The notifications about one case (case_reference null: those about no case), described by its newest."""

    case_reference: str | None
    total: int = Field(description="how many notifications (unread ones only, with ?unread=true)")
    unread: int
    latest_kind: str
    latest_step_code: str | None
    latest_at: datetime
    link: str


@router.get("", response_model=list[NotificationOut], summary="My notifications, newest first")
def list_inbox(core: Core, user: AnyUser, unread: bool = False,
               limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[NotificationOut]:
    return [NotificationOut(id=r.id, kind=r.kind, case_reference=r.case_reference, step_code=r.step_code,
                            unit=r.unit, due_at=r.due_at, link=r.link, created_at=r.created_at,
                            read=r.read_at is not None)
            for r in inbox.inbox(engine=core.engine, username=user.username, unread_only=unread, limit=limit)]


@router.get("/cases", response_model=list[CaseGroup], summary="My notifications grouped per case, newest first")
def list_by_case(core: Core, user: AnyUser, unread: bool = False,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[CaseGroup]:
    return [CaseGroup(case_reference=r.case_reference, total=r.total, unread=r.unread, latest_kind=r.kind,
                      latest_step_code=r.step_code, latest_at=r.created_at, link=r.link)
            for r in inbox.by_case(engine=core.engine, username=user.username, unread_only=unread, limit=limit)]


@router.get("/count", response_model=Count, summary="How many unread")
def count(core: Core, user: AnyUser) -> Count:
    return Count(unread=inbox.unread_count(engine=core.engine, username=user.username))


@router.post("/read", response_model=Count, summary="Mark notifications read")
def mark_read(core: Core, user: AnyUser, body: Ids) -> Count:
    inbox.mark_read(engine=core.engine, username=user.username, ids=body.ids, now=datetime.now(timezone.utc))
    return Count(unread=inbox.unread_count(engine=core.engine, username=user.username))


@router.post("/unread", response_model=Count, summary="Mark notifications unread again")
def mark_unread(core: Core, user: AnyUser, body: Ids) -> Count:
    inbox.mark_read(engine=core.engine, username=user.username, ids=body.ids, now=datetime.now(timezone.utc),
                    read=False)
    return Count(unread=inbox.unread_count(engine=core.engine, username=user.username))


@router.post("/read-all", response_model=Count, summary="Mark all my notifications read, or all about one case")
def mark_all_read(core: Core, user: AnyUser,
                  case: Annotated[str | None, Query(max_length=32, description="only those about this case")] = None,
                  ) -> Count:
    inbox.mark_all_read(engine=core.engine, username=user.username, now=datetime.now(timezone.utc),
                        case_references=None if case is None else [case])
    return Count(unread=inbox.unread_count(engine=core.engine, username=user.username))
