"""Administration: the database schema, the audit chain, encryption keys and users."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from pathway.cli.common import (
    DatabaseUrl, _core, _count, _fail, _progress, audit_app, db_app, err, keys_app, out, users_app,
)
from pathway.errors import ForlopError


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
                                       progress=lambda n: progress.advance(task, n))
    for problem in report.problems:
        out.print(problem, markup=False, highlight=False, soft_wrap=True)
    err.print(f"{_count(report.cases, 'case')}, {_count(report.events, 'event')}: "
              + ("chain intact" if report.ok else _count(len(report.problems), "problem")))
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
    """Re-encrypt every person record under the active key (the first of FORLOP_ENCRYPTION_KEYS)."""
    from pathway import services

    core = _core(database_url)
    with _progress() as progress:
        task = progress.add_task("re-encrypting", total=None)
        n = services.rotate_person_keys(engine=core.engine, keys=core.keys, progress=lambda k: progress.advance(task, k))
    out.print(f"{_count(n, 'person record')} re-encrypted under key '{core.keys.active_id}'")


# -- users ------------------------------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[str, typer.Option(help="coordinator, partner, manager or admin")],
    unit: Annotated[Optional[str], typer.Option(help="Unit (coordinators, managers).")] = None,
    agency: Annotated[Optional[str], typer.Option(help="Agency (partner contacts), e.g. police, nav.")] = None,
    language: Annotated[str, typer.Option(help="nb or en")] = "nb",
    email: Annotated[Optional[str], typer.Option(help="Where reminders are emailed (optional).")] = None,
    webhook_url: Annotated[Optional[str], typer.Option(help="Where reminders are posted (optional).")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user (asks for a password, or reads it with --password-stdin)."""
    from pathway import services
    from pathway.accounts import set_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        err.print("error: password: at least 8 characters")
        raise typer.Exit(2)
    core = _core(database_url)
    try:
        services.add_user(engine=core.engine, username=username, role=role, unit=unit, agency=agency,
                          language=language, email=email, webhook_url=webhook_url)
    except ForlopError as exc:
        raise _fail(exc, 2) from None
    set_password(core.engine, username, password)
    out.print(f"user {username} ({role}) created")
