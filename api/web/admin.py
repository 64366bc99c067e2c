"""The administrator's pages: users and their roles, the pathway definitions (with `forlop validate`'s
problems shown inline), and the access log by case or by user (whose reading is itself logged)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from api.access import read_access_log
from api.deps import Core
from api.routes.admin import UserIn
from api.web.auth import see_other
from api.web.render import page
from api.web.session import AdminPage, Posted, Session
from pathway import services
from pathway.accounts import set_password
from pathway.definition import load_definition, parse_definition
from pathway.errors import DatabaseError, DefinitionError, ForlopError
from pathway.views import users as views

router = APIRouter(prefix="/admin", include_in_schema=False)
MAX_DEFINITION = 512 * 1024


@router.get("/users")
def users(request: Request, core: Core, session: AdminPage, done: str = "") -> Response:
    return _users(request, core, session, saved=bool(done))


def _users(request: Request, core: Core, session: Session, *, status: int = 200, saved: bool = False,
           errors: list[dict[str, Any]] | None = None, message: str | None = None) -> Response:
    with core.uow(read_only=True) as uow:
        rows = views.users(uow.conn)
    return page(request, "admin_users.html", session, status=status, users=rows, saved=saved, errors=errors or [],
                message=message)


@router.post("/users")
def create_user(request: Request, core: Core, session: AdminPage, form: Posted) -> Response:
    try:
        body = UserIn.model_validate({k: v for k, v in form.items() if k in UserIn.model_fields and v != ""})
        services.add_user(engine=core.engine, username=body.username, role=body.role, unit=body.unit,
                          agency=body.agency, language=body.language, email=body.email)
        set_password(core.engine, body.username, body.password)
    except ValidationError as exc:
        errors = [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return _users(request, core, session, status=422, errors=errors)
    except DatabaseError:  # the database's state, or a bug: the app's problem page answers it, not this form
        raise
    except ForlopError as exc:
        return _users(request, core, session, status=409, message=str(exc))
    return see_other("/admin/users?done=1")


@router.get("/definitions")
def definitions(request: Request, core: Core, session: AdminPage) -> Response:
    return _definitions(request, core, session)


def _definitions(request: Request, core: Core, session: Session, *, status: int = 200, source: str = "",
                 checked: dict[str, Any] | None = None) -> Response:
    files = []
    for path in sorted(Path(core.settings.definitions_dir).glob("*.yaml")):
        files.append({"name": path.name, **_check(lambda: load_definition(path))})
    return page(request, "admin_definitions.html", session, status=status, versions=core.catalog.versions(),
                files=files, source=source, checked=checked)


def _check(load: Any) -> dict[str, Any]:
    """What `forlop validate` says about one definition: ok with its figures, or every problem with its line."""
    try:
        definition = load()
    except DefinitionError as exc:
        return {"ok": False, "problems": exc.problems}
    return {"ok": True, "id": definition.id, "version": definition.version,
            "checkpoints": len(definition.checkpoints), "problems": []}


@router.post("/definitions/validate")
def validate(request: Request, core: Core, session: AdminPage, form: Posted) -> Response:
    source = str(form.get("source", ""))
    if len(source.encode()) > MAX_DEFINITION:
        checked: dict[str, Any] = {"ok": False, "problems": [], "too_big": True}
    else:
        checked = _check(lambda: parse_definition(source, filename="definition.yaml"))
    return _definitions(request, core, session, status=200 if checked["ok"] else 422, source=source,
                        checked=checked)


@router.get("/access")
def access(request: Request, core: Core, session: AdminPage,
           case: Annotated[str, Query(max_length=32)] = "",
           user: Annotated[str, Query(max_length=64)] = "") -> Response:
    entries: list[dict[str, Any]] = []
    if case or user:
        entries = read_access_log(core, request, session.user, case_reference=case or None, username=user or None,
                                  limit=500)
    return page(request, "admin_access.html", session, entries=entries, case=case, who=user,
                searched=bool(case or user))
