"""The administrator's pages: users (created, changed, deactivated and reactivated, given a new password, from
lists of units and agencies), the pathway definitions (with `forlop validate`'s problems shown inline), the
access log by case, user and dates (whose reading is itself logged), and erasure: what will be erased when, the legal
holds in force (set and lifted here with a reason), and the erasure log."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from api.access import access_writer
from api.administration import PasswordIn, UserChange, UserIn, acting, change_hold, changes_of, choices, read_log
from api.deps import Core
from api.web.auth import see_other
from api.i18n import N_
from api.web.i18n import FIELD_LABELS, form_errors, translator
from api.web.render import page
from api.web.session import AdminPage, Posted, Session, language
from pathway.definition import load_definition, parse_definition
from pathway.errors import DatabaseError, DefinitionError, ForlopError, InvalidArgument, NotFound
from pathway.services import retention
from pathway.services import users as service
from pathway.views import users as views
from pathway.views.access import LogFilter

router = APIRouter(prefix="/admin", include_in_schema=False)
MAX_DEFINITION = 512 * 1024
# What a refused change says on the page (English, in bokmål from the catalog).
MESSAGES = {"unit": N_("Choose a unit from the list."), "agency": N_("Choose an agency from the list."),
            "password": N_("At least 8 characters."), "end": N_("The end date comes before the start date."),
            "phone": N_("Give a phone number: digits and spaces, perhaps starting with +.")}
REFUSALS = {"self": N_("You cannot deactivate yourself; another administrator can."),
            "last_admin": N_("This is the last active administrator; make another one first."),
            "provider_account": N_("This user signs in through an identity provider and has no password here.")}
DONE = {"created": N_("Saved."), "user.update": N_("Saved."), "user.phone": N_("Saved."),
        "user.deactivate": N_("The user is deactivated and signed out."),
        "user.reactivate": N_("The user can sign in again."), "user.password": N_("The new password is set.")}


@router.get("/users")
def users(request: Request, core: Core, session: AdminPage, done: str = "") -> Response:
    return _users(request, core, session, done=DONE.get(done))


def _users(request: Request, core: Core, session: Session, *, status: int = 200, done: str | None = None,
           errors: list[dict[str, Any]] | None = None, message: str | None = None) -> Response:
    with core.uow(read_only=True) as uow:
        rows = views.users(uow.conn)
    return page(request, "admin_users.html", session, status=status, users=rows, done=done, errors=errors or [],
                message=message, units=views.units(core.settings), agencies=views.agencies(core.catalog),
                providers=core.identity.providers)


def _refused(request: Request, core: Core, session: Session, exc: ValidationError | ForlopError) -> Response:
    """The users page again, saying in the page's language what was refused and where."""
    t = translator(language(request, session.user))
    if isinstance(exc, ValidationError):
        return _users(request, core, session, status=422,
                      errors=form_errors(exc, language(request, session.user)))
    if isinstance(exc, InvalidArgument):
        msg = t(MESSAGES[exc.field]) if exc.field in MESSAGES else str(exc).removeprefix(f"{exc.field}: ")
        return _users(request, core, session, status=422, errors=[{"loc": t(FIELD_LABELS.get(exc.field, exc.field)),
                                                                    "msg": msg}])
    if isinstance(exc, NotFound):
        return _users(request, core, session, status=404, message=N_("There is no such user."))
    if isinstance(exc, service.AccountRefused):
        return _users(request, core, session, status=409, message=REFUSALS[exc.rule])
    return _users(request, core, session, status=409, message=str(exc))


def _form(form: Posted, model: type[BaseModel]) -> Any:
    return model.model_validate({k: v for k, v in form.items() if k in model.model_fields and v != ""})


@router.post("/users")
def create_user(request: Request, core: Core, session: AdminPage, form: Posted) -> Response:
    try:
        body = _form(form, UserIn)
        service.add_user(engine=core.engine, username=body.username, role=body.role, unit=body.unit,
                         agency=body.agency, language=body.language, email=body.email, password=body.password,
                         choices=choices(core), by=acting(request, session.user), phone=body.phone)
    except DatabaseError:  # the database's state, or a bug: the app's problem page answers it, not this form
        raise
    except (ValidationError, ForlopError) as exc:
        return _refused(request, core, session, exc)
    return see_other("/admin/users?done=created")


# The CSRF check (``Posted``) comes before the role check here, as on every other form: a form not sent by our own
# page is refused as such (403), whoever sends it.


@router.post("/users/update")
def user_update(request: Request, core: Core, form: Posted, session: AdminPage) -> Response:
    def build() -> list[service.UserCommand]:
        data: dict[str, Any] = {k: v for k, v in form.items() if k in UserChange.model_fields and v != ""}
        if "phone" in form:  # the form always sends it: left empty, the user has no work phone
            data["phone"] = form.get("phone") or None
        return changes_of(_target(form), UserChange.model_validate(data))

    return _administer(request, core, session, build)


@router.post("/users/deactivate")
def user_deactivate(request: Request, core: Core, form: Posted, session: AdminPage) -> Response:
    return _administer(request, core, session, lambda: service.Deactivate(_target(form)))


@router.post("/users/reactivate")
def user_reactivate(request: Request, core: Core, form: Posted, session: AdminPage) -> Response:
    return _administer(request, core, session, lambda: service.Reactivate(_target(form)))


@router.post("/users/password")
def user_password(request: Request, core: Core, form: Posted, session: AdminPage) -> Response:
    return _administer(request, core, session,
                       lambda: service.ResetPassword(_target(form), _form(form, PasswordIn).password))


def _target(form: Posted) -> str:
    name = form.get("username")
    if not isinstance(name, str) or not name:
        raise NotFound("user", "")
    return name


def _administer(request: Request, core: Core, session: Session, build: Any) -> Response:
    """Carry out what the form asks (one command, or several in one transaction), or show why it was refused."""
    try:
        built = build()
        command, *then = built if isinstance(built, list) else [built]
        service.administer(command, engine=core.engine, by=acting(request, session.user), choices=choices(core),
                           then=then)
    except DatabaseError:
        raise
    except (ValidationError, ForlopError) as exc:
        return _refused(request, core, session, exc)
    return see_other(f"/admin/users?done={command.action}")


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
           user: Annotated[str, Query(max_length=64)] = "",
           start: Annotated[str, Query(max_length=10)] = "",
           end: Annotated[str, Query(max_length=10)] = "") -> Response:
    t = translator(language(request, session.user))
    days: dict[str, date | None] = {}
    errors: list[dict[str, str]] = []
    for field, text in (("start", start), ("end", end)):
        try:
            days[field] = date.fromisoformat(text) if text else None
        except ValueError:
            days[field] = None
            errors.append({"loc": t(FIELD_LABELS[field]), "msg": t("Give a date as YYYY-MM-DD.")})
    where = LogFilter()
    if not errors:
        try:
            where = LogFilter(case or None, user or None, days["start"], days["end"])
        except InvalidArgument as exc:  # a day out of range, or the end before the start
            first, last = days["start"], days["end"]
            msg = MESSAGES["end"] if first and last and first > last else N_("Give a date between 1970 and 2099.")
            errors.append({"loc": t(FIELD_LABELS[exc.field]), "msg": t(msg)})
    entries = read_log(core, request, session.user, where, limit=500) if not where.empty else []
    return page(request, "admin_access.html", session, status=422 if errors else 200, entries=entries, case=case,
                who=user, start=start, end=end, searched=not where.empty, errors=errors)


RULE = re.compile(r"retention: (\d+) days after closure \((.+)\)")  # as ``services.retention.rule_of`` writes it
SHOWN = 200  # the soonest erasures and the newest log entries the page shows (the CLI and the API give them all)
HOLD_DONE = {"hold": N_("The case is on legal hold: it is not erased until the hold is lifted."),
             "release": N_("The legal hold is lifted: the case is erased when its retention period has ended.")}
HOLD_REFUSED = {"held": N_("The case is on legal hold already."), "not_held": N_("The case is not on legal hold."),
                "erased": N_("The case is erased: there is nothing left to hold.")}


@router.get("/retention")
def retention_page(request: Request, core: Core, session: AdminPage, done: str = "") -> Response:
    return _retention(request, core, session, done=HOLD_DONE.get(done))


def _retention(request: Request, core: Core, session: Session, *, status: int = 200, done: str | None = None,
               errors: list[dict[str, Any]] | None = None, message: str | None = None,
               form: dict[str, str] | None = None) -> Response:
    now = datetime.now(timezone.utc)
    with core.uow(snapshot=True) as uow:  # the reads and their access-log rows: one transaction
        due = retention.due_for_erasure(uow.conn, settings=core.settings, now=now)
        holds = retention.active_holds(uow.conn, core.keys)
        erased = retention.erasure_log(uow.conn, limit=SHOWN)
        for action in ("retention.list", "retention.log"):
            access_writer(request, session.user, action)(uow.conn)
        uow.commit()
    t = translator(language(request, session.user))
    for entry in erased:  # the rule in the reader's language; one written otherwise is shown as it was written
        if found := RULE.fullmatch(entry["rule"]):
            entry["rule"] = t(N_("{days} days after closure")).format(days=found[1]) + f" ({found[2]})"
        if entry["erased_by"] == retention.SCHEDULER:
            entry["erased_by"] = t(N_("automatic, at night"))
    return page(request, "admin_retention.html", session, status=status, due=due[:SHOWN], due_total=len(due),
                due_now=sum(d.is_due(now) for d in due), now=now, holds=holds, erased=erased, done=done,
                errors=errors or [], message=message, form=form or {}, default_days=core.settings.retention_days,
                unit_days=core.settings.retention_days_by_unit)


@router.post("/retention/hold")
def retention_hold(request: Request, core: Core, form: Posted, session: AdminPage) -> Response:
    return _change_hold(request, core, session, form, lift=False)


@router.post("/retention/release")
def retention_release(request: Request, core: Core, form: Posted, session: AdminPage) -> Response:
    return _change_hold(request, core, session, form, lift=True)


def _change_hold(request: Request, core: Core, session: Session, form: Posted, *, lift: bool) -> Response:
    reference = str(form.get("reference") or "").strip()[:32]
    reason = str(form.get("reason") or "")
    entered = {"reference": reference, "reason": reason} if not lift else {}
    t = translator(language(request, session.user))
    try:
        if not reference:
            raise NotFound("case", "")
        change_hold(core, request, session.user, reference, reason, lift=lift)
    except DatabaseError:
        raise
    except InvalidArgument:
        return _retention(request, core, session, status=422, form=entered, errors=[
            {"loc": t("Reason"), "msg": t(N_("Give a reason of 1 to 2000 characters."))}])
    except NotFound:
        return _retention(request, core, session, status=404, form=entered,
                          message=N_("There is no case with this reference."))
    except retention.RetentionRefused as exc:
        return _retention(request, core, session, status=409, form=entered, message=HOLD_REFUSED[exc.rule])
    return see_other(f"/admin/retention?done={'release' if lift else 'hold'}")
