"""Administration: the database schema, the audit chain, encryption keys and users."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from pathway.cli.common import (
    Actor, DatabaseUrl, _core, _count, _fail, _local, _progress, audit_app, db_app, err, keys_app, out, users_app,
)
from pathway.errors import ForlopError, InvalidArgument, NotPermitted

if TYPE_CHECKING:
    from pathway.bootstrap import Forlop
    from pathway.services.users import Actor as Acting
    from pathway.services.users import Choices, UserCommand


# -- database ---------------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Migrate the database to the newest schema and register the definitions directory."""
    core = _core(database_url)
    versions = core.catalog.versions()
    core.close()
    err.print(f"database is current; definitions: {', '.join(f'{p} v{v}' for p, v, _ in versions) or 'none'}")


# -- audit ------------------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(database_url: DatabaseUrl = None,
                 replay: Annotated[bool, typer.Option(help="Also replay every case and compare its state.")] = True) -> None:
    """Check every case's event chain (and replay it); exit 1 if any event was edited or deleted."""
    from pathway import services

    core = _core(database_url)
    with _progress() as progress:
        task = progress.add_task("verifying", total=None)
        report = services.verify_audit(engine=core.engine, replay_with=core.catalog.resolve if replay else None,
                                       keys=core.keys if replay else None,
                                       progress=lambda n: progress.advance(task, n))
    for problem in report.problems:
        out.print(problem, markup=False, highlight=False, soft_wrap=True)
    err.print(f"{_count(report.cases, 'case')}, {_count(report.events, 'event')}: "
              + ("chain intact" if report.ok else _count(len(report.problems), "problem"))
              + (f" ({_count(report.erased, 'erased case')}: chain verified, not replayed)" if report.erased else ""))
    if not report.ok:
        raise typer.Exit(1)


# -- keys -------------------------------------------------------------------------------------------------


@keys_app.command("new")
def keys_new() -> None:
    """Print a new random key (for FORLOP_ENCRYPTION_KEYS as id:key, or FORLOP_INDEX_KEY)."""
    from pathway.crypto import generate_key

    out.print(generate_key())


@keys_app.command("rotate")
def keys_rotate(database_url: DatabaseUrl = None) -> None:
    """Re-wrap every case's own key under the active master key (the first of FORLOP_ENCRYPTION_KEYS): the records
    and texts a case key seals are not touched. Police referrals not yet part of a case, and person or child records
    of cases from before case keys, are re-encrypted. Then the old key can leave FORLOP_ENCRYPTION_KEYS."""
    from pathway import services
    from pathway.services.referrals import rotate_referral_keys

    core = _core(database_url)
    with _progress() as progress:
        task = progress.add_task("re-wrapping", total=None)
        wrapped = services.rewrap_case_keys(engine=core.engine, keys=core.keys,
                                            progress=lambda k: progress.advance(task, k))
        n = services.rotate_person_keys(engine=core.engine, keys=core.keys, progress=lambda k: progress.advance(task, k))
    out.print(f"{_count(wrapped, 'case key')} re-wrapped under key '{core.keys.active_id}' (no record or text "
              "rewritten)")
    if n:  # records of cases from before case keys
        out.print(f"{_count(n, 'person or child record')} re-encrypted under key '{core.keys.active_id}'")
    referrals = rotate_referral_keys(engine=core.engine, keys=core.keys)
    if referrals:  # said apart, so that the count of people stays what it was
        out.print(f"{_count(referrals, 'police referral')} re-encrypted under key '{core.keys.active_id}'")


# -- users ------------------------------------------------------------------------------------------------

CLIENT = "cli"  # where the access log says a change made here came from
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")]
Phone = Annotated[Optional[str], typer.Option(
    help="A work phone partner agencies may call: digits and spaces, perhaps starting with + (\"\" takes it away).")]


def _password(from_stdin: bool) -> str:
    """A new password: read from standard input, or asked for twice; shorter than 8 characters is a usage error."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        err.print("error: password: at least 8 characters")
        raise typer.Exit(2)
    return password


def _administrator(core: Forlop, actor: str, what: str = "administer users: an administrator does") -> Acting:
    """The administrator named by ``--as``, as the access log will name them: an active user whose role is admin
    (the API's role gate on the same changes); ``what`` says what anyone else may not do."""
    from pathway import policy
    from pathway.services.users import Actor as Acting

    with core.engine.connect() as conn:
        user = policy.acting_user(conn, actor)
    if user.role != "admin":
        raise NotPermitted(user.username, what)
    return Acting(user.username, user.role, CLIENT)


def _choices(core: Forlop) -> Choices:
    from pathway.services.users import Choices

    return Choices.of(core.settings, core.catalog)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER variable and no passwd entry (some containers)
        return "unknown"


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[str, typer.Option(help="coordinator, partner, manager or admin")],
    unit: Annotated[Optional[str], typer.Option(help="Unit (coordinators, managers): one of FORLOP_UNITS.")] = None,
    agency: Annotated[Optional[str], typer.Option(
        help="Agency (partner contacts): one of the registered pathways', e.g. police, nav.")] = None,
    language: Annotated[str, typer.Option(help="nb or en")] = "nb",
    email: Annotated[Optional[str], typer.Option(help="Where reminders are emailed (optional).")] = None,
    webhook_url: Annotated[Optional[str], typer.Option(help="Where reminders are posted (optional).")] = None,
    phone: Phone = None,
    password_stdin: PasswordStdin = False,
    actor: Annotated[Optional[str], typer.Option(
        "--as", envvar="FORLOP_ACTOR", help="The administrator creating the user (the first one needs none).")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user (asks for a password, or reads it with --password-stdin); logged as user.add."""
    from pathway.services import users as service

    password = _password(password_stdin)
    core = _core(database_url)
    try:
        # Without --as (the first administrator, on a new database) the access log names the system account.
        by = _administrator(core, actor) if actor else service.Actor(f"os:{_login_name()}"[:64], "system", CLIENT)
        service.add_user(engine=core.engine, username=username, role=role, unit=unit, agency=agency,
                         language=language, email=email, webhook_url=webhook_url, password=password,
                         choices=_choices(core), by=by, phone=phone)
    except ForlopError as exc:
        raise _fail(exc, 2 if isinstance(exc, InvalidArgument) else 1) from None
    out.print(f"user {username} ({role}) created")


def _administer(database_url: str | None, actor: str, build: Callable[[], UserCommand | list[UserCommand]],
                done: str) -> None:
    from pathway.services import users as service

    core = _core(database_url)
    try:
        built = build()
        command, *then = built if isinstance(built, list) else [built]
        service.administer(command, engine=core.engine, by=_administrator(core, actor), choices=_choices(core),
                           then=then)
    except ForlopError as exc:
        raise _fail(exc, 2 if isinstance(exc, InvalidArgument) else 1) from None
    out.print(done)


@users_app.command("list")
def users_list(actor: Actor, database_url: DatabaseUrl = None) -> None:
    """Every user with role, unit, agency and whether active; and the units and agencies a user can belong to."""
    from rich.table import Table

    from pathway.views import users as views

    core = _core(database_url)
    try:
        _administrator(core, actor)
    except ForlopError as exc:
        raise _fail(exc) from None
    with core.uow(read_only=True) as uow:
        rows = views.users(uow.conn)
    table = Table("user", "role", "unit", "agency", "language", "phone", "active")
    for r in rows:
        table.add_row(r.username, r.role, r.unit or "", r.agency or "", r.language, r.phone or "",
                      "yes" if r.active else "no")
    out.print(table)
    choices = _choices(core)
    err.print(f"units: {', '.join(choices.units)}; agencies: {', '.join(choices.agencies)}", highlight=False)


@users_app.command("change")
def users_change(
    username: str,
    actor: Actor,
    role: Annotated[Optional[str], typer.Option(help="coordinator, partner, manager or admin")] = None,
    unit: Annotated[Optional[str], typer.Option(help="Unit (coordinators, managers): one of FORLOP_UNITS.")] = None,
    agency: Annotated[Optional[str], typer.Option(help="Agency (partner contacts), e.g. police, nav.")] = None,
    phone: Phone = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Give a user another role, unit or agency (takes effect at their next request), or a work phone; logged as
    user.update and user.phone, in one transaction."""
    from pathway.services.users import ChangeUser, SetPhone

    if role is None and phone is None:
        err.print("error: give --role, --phone, or both")
        raise typer.Exit(2)
    commands: list[UserCommand] = []
    said = []
    if role is not None:
        commands.append(ChangeUser(username, role, unit, agency))
        said.append(f"is now {role}" + (f" of {unit or agency}" if unit or agency else ""))
    if phone is not None:
        commands.append(SetPhone(username, phone or None))
        said.append(f"has the work phone {phone}" if phone else "has no work phone")
    _administer(database_url, actor, lambda: commands, f"user {username} " + " and ".join(said))


@users_app.command("deactivate")
def users_deactivate(username: str, actor: Actor, database_url: DatabaseUrl = None) -> None:
    """Deactivate a leaver: every session and token of theirs ends at once; logged as user.deactivate."""
    from pathway.services.users import Deactivate

    _administer(database_url, actor, lambda: Deactivate(username),
                f"user {username} deactivated; their sessions and tokens have ended")


@users_app.command("reactivate")
def users_reactivate(username: str, actor: Actor, database_url: DatabaseUrl = None) -> None:
    """Let a deactivated user sign in again (old sessions stay ended); logged as user.reactivate."""
    from pathway.services.users import Reactivate

    _administer(database_url, actor, lambda: Reactivate(username), f"user {username} can sign in again")


@users_app.command("password")
def users_password(username: str, actor: Actor, password_stdin: PasswordStdin = False,
                   database_url: DatabaseUrl = None) -> None:
    """Give a user a new password (asks for it, or reads it with --password-stdin); their sessions and tokens end.
    Logged as user.password, never the password."""
    from pathway.services.users import ResetPassword

    password = _password(password_stdin)
    _administer(database_url, actor, lambda: ResetPassword(username, password), f"user {username} has a new password")


# -- the access log -----------------------------------------------------------------------------------------


@audit_app.command("access")
def audit_access(
    actor: Actor,
    case: Annotated[Optional[str], typer.Option(help="A case reference.")] = None,
    user: Annotated[Optional[str], typer.Option(
        "--user", help="A user: what they did, and what administrators did to their account.")] = None,
    start: Annotated[Optional[datetime], typer.Option(formats=["%Y-%m-%d"], help="From this day (Oslo).")] = None,
    end: Annotated[Optional[datetime], typer.Option(formats=["%Y-%m-%d"], help="To this day, included.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="The newest this many.")] = 200,
    database_url: DatabaseUrl = None,
) -> None:
    """The access log by case, user and dates (newest first), for an administrator; the reading is logged too."""
    from rich.table import Table

    from pathway.store.access import access_writer
    from pathway.views.access import LogFilter, access_entries

    core = _core(database_url)
    try:
        where = LogFilter(case, user, start.date() if start else None, end.date() if end else None)
        if where.empty:
            raise InvalidArgument("case", "give --case, --user, --start or --end")
        by = _administrator(core, actor)
        with core.uow(snapshot=True) as uow:  # the read and its own access-log row: one transaction
            entries = access_entries(uow.conn, where=where, limit=limit, keys=core.keys)
            access_writer(username=by.username, role=by.role, action="audit.read", client=CLIENT,
                          case_reference=where.case_reference, reason=where.described())(uow.conn)
            uow.commit()
    except ForlopError as exc:
        raise _fail(exc, 2 if isinstance(exc, InvalidArgument) else 1) from None
    table = Table("when (Oslo)", "user", "role", "action", "case", "client", "status", "details")
    for e in entries:
        table.add_row(_local(e["at"]), e["username"], e["role"], e["action"], e["case_reference"] or "",
                      e["client"] or "", str(e["status"]), ("break-glass: " if e["break_glass"] else "")
                      + (e["reason"] or ""))
    out.print(table)
