"""Administrators: users (created, changed, deactivated and reactivated, given a new password, each change in the
access log), the access log by case, user and dates (whose reading is itself logged), and retention: what would be
erased when, the erasure log, and legal holds set and lifted (each in the access log)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timezone
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel

from api.access import access_writer
from api.administration import (
    USERNAME, HoldBody, PasswordIn, UserChange, UserIn, acting, change_hold, changes_of, choices, read_log,
)
from api.deps import Admin, Core
from pathway.bootstrap import Forlop
from pathway.calendar import OSLO
from pathway.errors import NotFound
from pathway.services import retention
from pathway.services import users as service
from pathway.views import users as views
from pathway.views.access import LogFilter

router = APIRouter(prefix="/api/v1", tags=["administration"])
Target = Annotated[str, Path(min_length=1, max_length=64, pattern=USERNAME, description="The user's name")]
CaseReference = Annotated[str, Path(min_length=1, max_length=32, description="The case's reference")]


class AccessEntry(BaseModel):
    at: datetime
    username: str
    role: str
    action: str
    case_reference: str | None
    task_id: uuid.UUID | None
    client: str | None
    status: int
    break_glass: bool
    reason: str | None


class UserOut(BaseModel):
    username: str
    role: str
    unit: str | None
    agency: str | None
    language: str
    active: bool
    phone: str | None = None  # a work phone partner agencies may call


class Agency(BaseModel):
    id: str
    nb: str
    en: str


class Placements(BaseModel):
    """Where a user can belong: a coordinator's or manager's unit, a partner contact's agency."""

    units: list[str]
    agencies: list[Agency]


@router.get("/audit/access", response_model=list[AccessEntry],
            summary="The access log, by case, by user (what they did and what was done to their account) and by "
                    "date (Oslo calendar days, start and end included)")
def access_log(request: Request, core: Core, user: Admin,
               case: Annotated[str | None, Query(max_length=32)] = None,
               username: Annotated[str | None, Query(alias="user", max_length=64)] = None,
               start: date | None = None, end: date | None = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[AccessEntry]:
    where = LogFilter(case or None, username or None, start, end)
    if where.empty:
        raise HTTPException(422, "give ?case=REFERENCE, ?user=NAME, or a date range (?start=, ?end=)")
    entries = read_log(core, request, user, where, limit=limit)
    return [AccessEntry(**{k: e[k] for k in AccessEntry.model_fields}) for e in entries]


@router.get("/users", response_model=list[UserOut], summary="Users and their roles")
def users(core: Core, user: Admin) -> list[UserOut]:
    with core.uow(read_only=True) as uow:
        rows = views.users(uow.conn)
    return [_out(r) for r in rows]


@router.get("/users/placements", response_model=Placements, summary="The units and agencies a user can belong to")
def placements(core: Core, user: Admin) -> Placements:
    return Placements(units=list(views.units(core.settings)),
                      agencies=[Agency(id=k, nb=v.nb, en=v.en) for k, v in views.agencies(core.catalog).items()])


@router.post("/users", response_model=UserOut, status_code=201, summary="Create a user")
def create_user(request: Request, core: Core, user: Admin, body: UserIn) -> UserOut:
    service.add_user(engine=core.engine, username=body.username, role=body.role, unit=body.unit, agency=body.agency,
                     language=body.language, email=body.email, password=body.password, choices=choices(core),
                     by=acting(request, user), phone=body.phone)
    return _user(core, body.username)


@router.patch("/users/{username}", response_model=UserOut,
              summary="Change a user's role, unit or agency (takes effect at their next request), or work phone")
def user_update(request: Request, core: Core, user: Admin, username: Target, body: UserChange) -> UserOut:
    commands = changes_of(username, body)
    service.administer(commands[0], engine=core.engine, by=acting(request, user), choices=choices(core),
                       then=commands[1:])
    return _user(core, username)



@router.post("/users/{username}/deactivate", response_model=UserOut,
             summary="Deactivate a user: every session and token of theirs ends at once")
def user_deactivate(request: Request, core: Core, user: Admin, username: Target) -> UserOut:
    service.administer(service.Deactivate(username), engine=core.engine, by=acting(request, user),
                       choices=choices(core))
    return _user(core, username)


@router.post("/users/{username}/reactivate", response_model=UserOut, summary="Let a deactivated user sign in again")
def user_reactivate(request: Request, core: Core, user: Admin, username: Target) -> UserOut:
    service.administer(service.Reactivate(username), engine=core.engine, by=acting(request, user),
                       choices=choices(core))
    return _user(core, username)


@router.post("/users/{username}/password", response_model=UserOut,
             summary="Give a user a new password (their sessions and tokens end)")
def user_password(request: Request, core: Core, user: Admin, username: Target, body: PasswordIn) -> UserOut:
    service.administer(service.ResetPassword(username, body.password), engine=core.engine,
                       by=acting(request, user), choices=choices(core))
    return _user(core, username)


class DueOut(BaseModel):
    """A closed case not yet erased: when it will be, and whether a legal hold or an open child's pathway stops it."""

    reference: str
    unit: str
    closed_at: datetime
    erase_from: datetime
    held: bool
    waiting_for_child: bool
    due_now: bool
    rule: str


class ErasureOut(BaseModel):
    reference: str
    unit: str
    closed_at: datetime
    erased_at: datetime
    rule: str
    erased_by: str


class HoldOut(BaseModel):
    reference: str
    held: bool  # whether a legal hold is in force now


@router.get("/admin/retention", response_model=list[DueOut],
            summary="A dry run of retention: the closed cases not yet erased (soonest first; ?until=DAY: those whose "
                    "period ends by then), when each will be, and whether a hold stops it")
def retention_due(request: Request, core: Core, user: Admin, until: date | None = None,
                  limit: Annotated[int, Query(ge=1, le=100_000)] = 1000) -> list[DueOut]:
    now = datetime.now(timezone.utc)
    last = None if until is None else datetime.combine(until, time.max, tzinfo=OSLO)
    with core.uow(snapshot=True) as uow:
        listed = retention.due_for_erasure(uow.conn, settings=core.settings, now=now, until=last)
        access_writer(request, user, "retention.list")(uow.conn)
        uow.commit()
    return [DueOut(reference=d.reference, unit=d.unit, closed_at=d.closed_at, erase_from=d.erase_from, held=d.held,
                   waiting_for_child=d.waiting, due_now=d.is_due(now), rule=d.rule) for d in listed[:limit]]


@router.get("/admin/erasures", response_model=list[ErasureOut],
            summary="The erasure log, newest first: which case was erased, when, under which rule (nothing personal)")
def erasures(request: Request, core: Core, user: Admin,
             limit: Annotated[int, Query(ge=1, le=10_000)] = 500) -> list[ErasureOut]:
    with core.uow(snapshot=True) as uow:
        rows = retention.erasure_log(uow.conn, limit=limit)
        access_writer(request, user, "retention.log")(uow.conn)
        uow.commit()
    return [ErasureOut(**r) for r in rows]


@router.post("/admin/cases/{reference}/hold", response_model=HoldOut, status_code=201,
             summary="Put a case on legal hold: it is not erased while the hold is in force (409 if it is already)")
def case_hold(request: Request, core: Core, user: Admin, reference: CaseReference, body: HoldBody) -> HoldOut:
    change_hold(core, request, user, reference, body.reason, lift=False)
    return HoldOut(reference=reference, held=True)


@router.post("/admin/cases/{reference}/hold/release", response_model=HoldOut,
             summary="Lift the legal hold on a case (409 if none is in force); the next run erases it if its period "
                     "has ended")
def case_hold_release(request: Request, core: Core, user: Admin, reference: CaseReference, body: HoldBody) -> HoldOut:
    change_hold(core, request, user, reference, body.reason, lift=True)
    return HoldOut(reference=reference, held=False)


def _user(core: Forlop, username: str) -> UserOut:
    with core.uow(read_only=True) as uow:
        row = views.user(uow.conn, username)
    if row is None:
        raise NotFound("user", username)
    return _out(row)


def _out(row: Any) -> UserOut:
    return UserOut(username=row.username, role=row.role, unit=row.unit, agency=row.agency, language=row.language,
                   active=row.active, phone=row.phone)
