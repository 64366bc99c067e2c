"""What the administrator's API routes and pages share: the forms of a user (created, changed, given a password),
where a user can belong, who is acting, the access log read by case, user and dates (the reading logged), and a legal
hold set or lifted (logged in its transaction)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import Request
from pydantic import BaseModel, Field

from api.access import access_writer, log_access
from api.problems import status_for
from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.errors import DatabaseError, ForlopError, InvalidArgument, NotFound
from pathway.services import retention
from pathway.services.users import Actor, ChangeUser, Choices, SetPhone, UserCommand
from pathway.views.access import LogFilter, access_entries

USERNAME = r"^[A-Za-z0-9._-]+$"
Username = Annotated[str, Field(min_length=1, max_length=64, pattern=USERNAME)]
Password = Annotated[str, Field(min_length=8, max_length=1024)]
Role = Literal["coordinator", "partner", "manager", "admin"]


Unit = Annotated[str | None, Field(max_length=64, description="One of FORLOP_UNITS (coordinators, managers)")]
Agency = Annotated[str | None, Field(max_length=64, description="An agency of a registered pathway (partners)")]
Phone = Annotated[str | None, Field(max_length=32, examples=["+47 55 00 00 01"],
                                    description="A work phone partner agencies may call: digits, spaces, a leading +")]


class UserIn(BaseModel):
    username: Username
    role: Role
    unit: Unit = None
    agency: Agency = None
    language: Literal["nb", "en"] = "nb"
    email: Annotated[str | None, Field(max_length=320)] = None
    phone: Phone = None
    password: Password


class UserChange(BaseModel):
    """A user's new role and where they belong (a unit for coordinators and managers, an agency for partners), and
    their work phone: what is sent changes (a role, a phone, or both; a phone of null or "" takes it away)."""

    role: Role | None = None
    unit: Unit = None
    agency: Agency = None
    phone: Phone = None


class PasswordIn(BaseModel):
    password: Password


class HoldBody(BaseModel):
    """Why a legal hold is set or lifted (a complaint, a court case, an inquiry; or that it is settled). Kept sealed
    with the case, never in a log."""

    reason: Annotated[str, Field(min_length=1, max_length=retention.MAX_REASON)]


def changes_of(username: str, body: UserChange) -> list[UserCommand]:
    """What a change of a user asks for: a new role and placement where a role is sent, a new work phone where a
    phone is sent (null or "" takes it away); both in one transaction. Neither is refused."""
    commands: list[UserCommand] = []
    if body.role is None and (body.unit is not None or body.agency is not None):
        raise InvalidArgument("role", "a unit or an agency is changed with the role it goes with")
    if body.role is not None:
        commands.append(ChangeUser(username, body.role, body.unit, body.agency))
    if "phone" in body.model_fields_set:
        commands.append(SetPhone(username, body.phone))
    if not commands:
        raise InvalidArgument("role", "give a role, a phone, or both")
    return commands


def choices(core: Forlop) -> Choices:
    """Where a user can belong, as every form and route checks it: the configured units, the pathways' agencies."""
    return Choices.of(core.settings, core.catalog)


def acting(request: Request, user: User) -> Actor:
    """The administrator making a change, as the access log names them, from the request's client."""
    return Actor(user.username, user.role, request.client.host if request.client else None)


def read_log(core: Forlop, request: Request, user: User, where: LogFilter, *, limit: int) -> list[dict[str, Any]]:
    """The access log by case, user and dates, for an administrator; the reading is itself logged (with its filter),
    in its transaction."""
    with core.uow(snapshot=True) as uow:
        entries = access_entries(uow.conn, where=where, limit=limit, keys=core.keys)
        access_writer(request, user, "audit.read", case_reference=where.case_reference,
                      reason=where.described())(uow.conn)
        uow.commit()
    return entries


def change_hold(core: Forlop, request: Request, user: User, reference: str, reason: str, *, lift: bool) -> None:
    """Set (or lift) the legal hold on the case ``reference`` as the administrator ``user``, and log it in the same
    transaction; a refusal is logged apart (the change's transaction is rolled back). The reason is never logged."""
    action = "retention.release" if lift else "retention.hold"
    try:
        with core.uow() as uow:
            change = retention.lift_hold if lift else retention.set_hold
            change(uow.conn, case_id=retention.case_id_of(uow.conn, reference), by=user.username, reason=reason,
                   at=datetime.now(timezone.utc), keys=core.keys)
            access_writer(request, user, action, case_reference=reference)(uow.conn)
            uow.commit()
    except DatabaseError:
        raise
    except ForlopError as exc:
        log_access(core.engine, request, user, action, status=status_for(exc),
                   case_reference=None if isinstance(exc, NotFound) else reference)
        raise
