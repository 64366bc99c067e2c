"""What every ``forlop`` command shares: the typer apps, the consoles, the option types and small helpers."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pathway.calendar import OSLO
from pathway.errors import DatabaseError, DefinitionError, ForlopError
from pathway.settings import Settings

app = typer.Typer(
    name="forlop",
    help="Forløp: a care-pathway engine for people exposed to violence in close relationships.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained event log.", no_args_is_help=True)
case_app = typer.Typer(help="Work with cases: open, show, advance and adapt.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys for person records.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(case_app, name="case")
app.add_typer(keys_app, name="keys")
users_app = typer.Typer(help="People who work with Forløp.", no_args_is_help=True)
outbox_app = typer.Typer(help="Messages waiting for email and webhook delivery.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(outbox_app, name="outbox")
reports_app = typer.Typer(help="The managers' timeliness report.", no_args_is_help=True)
app.add_typer(reports_app, name="reports")
retention_app = typer.Typer(help="Erasure of closed cases after the retention period, legal holds that stop it, and "
                                 "the erasure log (administrators).", no_args_is_help=True)
app.add_typer(retention_app, name="retention")

out = Console()
err = Console(stderr=True)

DatabaseUrl = Annotated[
    Optional[str], typer.Option("--database-url", envvar=["FORLOP_DATABASE_URL", "DATABASE_URL"], show_envvar=True,
                                help="SQLAlchemy URL; default sqlite:///forlop.db")
]
Actor = Annotated[str, typer.Option("--as", envvar="FORLOP_ACTOR", help="Who makes the change (user name).")]
Reason = Annotated[Optional[str], typer.Option("--reason", "-r", help="Why (required where the plan changes).")]
Version = Annotated[Optional[int], typer.Option(
    "--version", "-V", help="The case version you read (`case show`); refused if the case has changed since. "
                            "Default: the version it is at now.")]


def _settings(database_url: str | None) -> Settings:
    overrides: dict[str, Any] = {}
    if database_url:
        overrides["database_url"] = database_url
    try:
        return Settings(**overrides)
    except ValueError as exc:
        # A pydantic ValidationError: one short line per setting, without pydantic's links and indentation.
        errors = exc.errors() if callable(getattr(exc, "errors", None)) else None  # type: ignore[attr-defined]
        messages = [
            (f"{'.'.join(map(str, e['loc']))}: " if e.get("loc") else "") + str(e["msg"]).removeprefix("Value error, ")
            for e in errors
        ] if errors else [str(exc)]
        for message in messages:
            err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _core(database_url: str | None):  # type: ignore[no-untyped-def]
    from pathway.bootstrap import bootstrap

    try:
        return bootstrap(_settings(database_url))
    except DefinitionError as exc:
        raise _problems(exc) from None


def _problems(exc: DefinitionError) -> typer.Exit:
    """Each problem of a file on its own line (file:line:column, field, what), and exit 2."""
    for problem in exc.problems:
        err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _fail(exc: ForlopError, code: int = 1) -> typer.Exit:
    err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(1 if isinstance(exc, DatabaseError) else code)  # the database's state is no usage error


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err, disable=not err.is_terminal and os.environ.get("FORLOP_PROGRESS") != "1")


def _count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 case``, ``2 cases``: a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _local(at: datetime | None) -> str:
    return "—" if at is None else at.astimezone(OSLO).strftime("%Y-%m-%d %H:%M")


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    from pathway.case import EARLIEST, LATEST

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 time: {text!r}") from None
    value = value.replace(tzinfo=OSLO) if value.tzinfo is None else value
    if not EARLIEST <= value < LATEST:  # year 1 or 9999 overflows the deadline arithmetic
        raise typer.BadParameter(f"must lie between {EARLIEST.year} and {LATEST.year}: {text!r}")
    return value
