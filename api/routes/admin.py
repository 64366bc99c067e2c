"""Administrators: users, pathway definitions, and the access log (whose reading is itself logged)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from api.access import read_access_log
from api.deps import Admin, Core
from pathway.accounts import set_password
from pathway import services
from pathway.views import users as views

router = APIRouter(prefix="/api/v1", tags=["administration"])


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


class UserIn(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    role: Literal["coordinator", "partner", "manager", "admin"]
    unit: Annotated[str | None, Field(max_length=64)] = None
    agency: Annotated[str | None, Field(max_length=64)] = None
    language: Literal["nb", "en"] = "nb"
    email: Annotated[str | None, Field(max_length=320)] = None
    password: Annotated[str, Field(min_length=8, max_length=1024)]


class UserOut(BaseModel):
    username: str
    role: str
    unit: str | None
    agency: str | None
    language: str
    active: bool


@router.get("/audit/access", response_model=list[AccessEntry], summary="The access log, by case or by user")
def access_log(request: Request, core: Core, user: Admin,
               case: Annotated[str | None, Query(max_length=32)] = None,
               username: Annotated[str | None, Query(alias="user", max_length=64)] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[AccessEntry]:
    if not case and not username:
        raise HTTPException(422, "give ?case=REFERENCE or ?user=NAME")
    entries = read_access_log(core, request, user, case_reference=case, username=username, limit=limit)
    return [AccessEntry(**{k: e[k] for k in AccessEntry.model_fields}) for e in entries]


@router.get("/users", response_model=list[UserOut], summary="Users and their roles")
def users(core: Core, user: Admin) -> list[UserOut]:
    with core.uow(read_only=True) as uow:
        rows = views.users(uow.conn)
    return [UserOut(username=r.username, role=r.role, unit=r.unit, agency=r.agency, language=r.language,
                    active=r.active) for r in rows]


@router.post("/users", response_model=UserOut, status_code=201, summary="Create a user")
def create_user(core: Core, user: Admin, body: UserIn) -> UserOut:
    services.add_user(engine=core.engine, username=body.username, role=body.role, unit=body.unit,
                      agency=body.agency, language=body.language, email=body.email)
    set_password(core.engine, body.username, body.password)
    return UserOut(username=body.username, role=body.role, unit=body.unit, agency=body.agency,
                   language=body.language, active=True)
