"""Administrators: users (created, changed, deactivated and reactivated, given a new password, each change in the
access log), and the access log by case, user and dates (whose reading is itself logged)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel

from api.administration import USERNAME, PasswordIn, UserChange, UserIn, acting, changes_of, choices, read_log
from api.deps import Admin, Core
from pathway.bootstrap import Forlop
from pathway.errors import NotFound
from pathway.services import users as service
from pathway.views import users as views
from pathway.views.access import LogFilter

router = APIRouter(prefix="/api/v1", tags=["administration"])
Target = Annotated[str, Path(min_length=1, max_length=64, pattern=USERNAME, description="The user's name")]


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


def _user(core: Forlop, username: str) -> UserOut:
    with core.uow(read_only=True) as uow:
        row = views.user(uow.conn, username)
    if row is None:
        raise NotFound("user", username)
    return _out(row)


def _out(row: Any) -> UserOut:
    return UserOut(username=row.username, role=row.role, unit=row.unit, agency=row.agency, language=row.language,
                   active=row.active, phone=row.phone)
