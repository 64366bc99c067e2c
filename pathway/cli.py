"""The ``forlop`` command line: definitions, database, cases, audit, demo and the server."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from pathway.calendar import OSLO
from pathway.errors import DefinitionError, ForlopError
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
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _fail(exc: ForlopError, code: int = 1) -> typer.Exit:
    err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err, disable=not err.is_terminal and os.environ.get("FORLOP_PROGRESS") != "1")


def _count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 case``, ``2 cases``: a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _local(at: datetime | None) -> str:
    return "—" if at is None else at.astimezone(OSLO).strftime("%Y-%m-%d %H:%M")


# -- definitions -------------------------------------------------------------------------------------------


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="Definition files (YAML).")]) -> None:
    """Check pathway definitions; print every problem as file:line:column: field: message (exit 2 on any)."""
    from pathway.definition import load_definition

    failed = 0
    for path in files:
        try:
            definition = load_definition(path)
        except DefinitionError as exc:
            failed += 1
            for problem in exc.problems:
                out.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        else:
            checkpoints = _count(len(definition.checkpoints), "checkpoint")
            err.print(f"{path}: ok ({definition.id} v{definition.version}, {checkpoints})",
                      markup=False, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(2)


@app.command()
def diagram(
    file: Annotated[Path, typer.Argument(help="A definition file (YAML).")],
    lang: Annotated[str, typer.Option(help="nb or en")] = "nb",
) -> None:
    """Print the pathway as a Mermaid state diagram."""
    from pathway.definition import load_definition
    from pathway.machine import mermaid

    try:
        definition = load_definition(file)
    except DefinitionError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    sys.stdout.write(mermaid(definition, lang="en" if lang == "en" else "nb"))


@app.command()
def schema(
    output: Annotated[Optional[Path], typer.Option(help="Write here instead of standard output.")] = None,
    check: Annotated[bool, typer.Option(help="Exit 1 if OUTPUT differs from the current schema.")] = False,
) -> None:
    """Print (or write) the JSON Schema of the definition format, for editors."""
    from pathway.definition import json_schema

    text = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    elif check:
        if not output.exists() or output.read_text(encoding="utf-8") != text:
            err.print(f"{output} is out of date; run `forlop schema --output {output}`")
            raise typer.Exit(1)
    else:
        output.write_text(text, encoding="utf-8")


# -- database ---------------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Migrate the database to the newest schema and register the definitions directory."""
    core = _core(database_url)
    versions = core.catalog.versions()
    core.close()
    err.print(f"database is current; definitions: {', '.join(f'{p} v{v}' for p, v, _ in versions) or 'none'}")


# -- cases ------------------------------------------------------------------------------------------------


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    from pathway.cases import EARLIEST, LATEST

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 time: {text!r}") from None
    value = value.replace(tzinfo=OSLO) if value.tzinfo is None else value
    if not EARLIEST <= value < LATEST:  # year 1 or 9999 overflows the deadline arithmetic
        raise typer.BadParameter(f"must lie between {EARLIEST.year} and {LATEST.year}: {text!r}")
    return value


@case_app.command("open")
def case_open(
    unit: Annotated[str, typer.Option(help="The crisis-centre unit that owns the case.")],
    actor: Actor,
    pathway_id: Annotated[str, typer.Option("--pathway", help="Pathway id.")] = "krisesenter",
    first_contact: Annotated[Optional[str], typer.Option(help="When first contact was received (ISO 8601, Oslo time if no offset); default now.")] = None,
    condition: Annotated[list[str], typer.Option(help="A condition that applies, e.g. children, shelter_stay.")] = [],  # noqa: B006
    reason: Reason = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Open a case at first contact and print its reference (only that, so `REF=$(forlop case open ...)` keeps it)."""
    from pathway import services

    core = _core(database_url)
    at = services.now()
    try:
        case = services.open_case(
            uow=core.uow(), pathway_id=pathway_id, unit=unit, first_contact_at=_parse_time(first_contact) or at,
            actor=actor, keys=core.keys, index_key=core.settings.index_key,
            reference_prefix=core.settings.reference_prefix, conditions=condition, reason=reason, at=at,
        )
    except ForlopError as exc:
        raise _fail(exc) from None
    out.print(case.reference, markup=False, highlight=False)


@case_app.command("show")
def case_show(reference: str, database_url: DatabaseUrl = None,
              as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Where a case stands: stage, version, steps with deadlines, consents and handovers."""
    from pathway import services

    core = _core(database_url)
    try:
        case = services.get_case(uow=core.uow(read_only=True), reference=reference)
    except ForlopError as exc:
        raise _fail(exc) from None
    if as_json:
        sys.stdout.write(json.dumps(case.snapshot(), indent=2, ensure_ascii=False) + "\n")
        return
    now = services.now()
    d = case.definition
    out.print(f"[bold]{case.reference}[/]  {d.id} v{d.version}  stage: [bold]{case.phase}[/]  version: {case.version}"
              + ("  [yellow]PAUSED[/]" if case.paused_since else ""))
    table = Table("step", "name", "state", "due (Oslo)", "overdue")
    for step in case.steps:
        name = step.title if step.adhoc else d.checkpoint[step.code].name.nb
        flag = "[red]OVERDUE[/]" if step.overdue(now) else ""
        table.add_row(f"{step.code}#{step.occurrence}", name, step.state, _local(step.due_at), flag)
    out.print(table)
    for agency, consent in sorted(case.consents.items()):
        out.print(f"consent {agency}: {'given' if consent.given else 'withdrawn'} {', '.join(consent.scope)}")
    for task in case.handovers:
        out.print(f"handover {task.id} {task.code} → {task.agency}: {task.status} (due {_local(task.due_at)})")
    out.print(f"allowed now: {', '.join(case.allowed_operations()) or 'nothing (closed)'}")


def _change(reference: str, version: int | None, database_url: str | None, change: Callable[[Any, datetime], Any]) -> None:
    from pathway import services

    core = _core(database_url)
    at = services.now()
    try:
        case, _ = services.change_case(uow=core.uow(), reference=reference, expected_version=version,
                                       change=lambda c: change(c, at))
    except ForlopError as exc:
        raise _fail(exc) from None
    out.print(f"{case.reference}: stage {case.phase}, version {case.version}")


@case_app.command("complete")
def case_complete(reference: str, code: str, actor: Actor, version: Version = None,
                  note: Annotated[Optional[str], typer.Option()] = None, database_url: DatabaseUrl = None) -> None:
    """Mark a checkpoint (or ad-hoc step) done."""
    _change(reference, version, database_url, lambda c, at: c.complete(code, actor=actor, at=at, note=note))


@case_app.command("skip")
def case_skip(reference: str, code: str, actor: Actor, reason: Annotated[str, typer.Option("--reason", "-r")],
              version: Version = None, database_url: DatabaseUrl = None) -> None:
    """Mark a checkpoint not applicable for this person."""
    _change(reference, version, database_url, lambda c, at: c.skip(code, actor=actor, at=at, reason=reason))


@case_app.command("advance")
def case_advance(reference: str, trigger: str, actor: Actor, reason: Reason = None, version: Version = None,
                 database_url: DatabaseUrl = None) -> None:
    """Move the case to another stage (e.g. start_support, move_out, back_to_intake)."""
    _change(reference, version, database_url, lambda c, at: c.advance(trigger, actor=actor, at=at, reason=reason))


@case_app.command("pause")
def case_pause(reference: str, actor: Actor, reason: Annotated[str, typer.Option("--reason", "-r")],
               version: Version = None, database_url: DatabaseUrl = None) -> None:
    """Stop the clock; paused time does not count against deadlines."""
    _change(reference, version, database_url, lambda c, at: c.pause(actor=actor, at=at, reason=reason))


@case_app.command("resume")
def case_resume(reference: str, actor: Actor, reason: Reason = None, version: Version = None,
                database_url: DatabaseUrl = None) -> None:
    """Restart the clock; open deadlines move by the paused time."""
    _change(reference, version, database_url, lambda c, at: c.resume(actor=actor, at=at, reason=reason))


@case_app.command("consent")
def case_consent(reference: str, agency: str, actor: Actor,
                 scope: Annotated[list[str], typer.Option(help="What may be shared (repeat).")] = [],  # noqa: B006
                 withdraw: Annotated[bool, typer.Option(help="Record a withdrawal instead.")] = False,
                 reason: Reason = None, version: Version = None, database_url: DatabaseUrl = None) -> None:
    """Record consent to share with an agency (or its withdrawal)."""
    _change(reference, version, database_url, lambda c, at: c.record_consent(
        agency, scope=scope, given=not withdraw, actor=actor, at=at, reason=reason))


@case_app.command("coordinator")
def case_coordinator(reference: str, coordinator: str, actor: Actor, reason: Reason = None, version: Version = None,
                     database_url: DatabaseUrl = None) -> None:
    """Assign the case's coordinator."""
    _change(reference, version, database_url, lambda c, at: c.assign_coordinator(
        coordinator, actor=actor, at=at, reason=reason))


@case_app.command("handover")
def case_handover(reference: str, code: str, actor: Actor,
                  legal_basis: Annotated[Optional[str], typer.Option(help="avert_crime or child_welfare_duty")] = None,
                  reason: Reason = None, version: Version = None, database_url: DatabaseUrl = None) -> None:
    """Create a handover task (needs consent for the agency, or a legal basis with a reason)."""
    _change(reference, version, database_url, lambda c, at: c.create_handover(
        code, actor=actor, at=at, legal_basis=legal_basis, reason=reason))


@case_app.command("close")
def case_close(reference: str, outcome: str, actor: Actor, reason: Reason = None, version: Version = None,
               database_url: DatabaseUrl = None) -> None:
    """Close with an outcome code (safe_housing, returned_to_abuser, moved_away, declined, transferred, ended_early)."""
    _change(reference, version, database_url, lambda c, at: c.close(outcome, actor=actor, at=at, reason=reason))


@case_app.command("list")
def case_list(database_url: DatabaseUrl = None,
              unit: Annotated[Optional[str], typer.Option()] = None,
              limit: Annotated[int, typer.Option(min=1, max=10_000, help="Show at most this many.")] = 50,
              show_all: Annotated[bool, typer.Option("--all", help="Show every open case.")] = False) -> None:
    """Open cases with stage and next deadline (soonest first); says on stderr when there are more than shown."""
    import sqlalchemy as sa

    from pathway.store.tables import case_t, step_t

    core = _core(database_url)
    nxt = (sa.select(sa.func.min(step_t.c.due_at)).where(step_t.c.case_id == case_t.c.id, step_t.c.ended_at.is_(None))
           .scalar_subquery())
    wanted = [case_t.c.closed_at.is_(None)] + ([case_t.c.unit == unit] if unit else [])
    query = (sa.select(case_t.c.reference, case_t.c.phase, case_t.c.unit, case_t.c.paused_since, nxt.label("next_due"))
             .where(*wanted).order_by(nxt.label("next_due")).limit(None if show_all else limit))
    with core.engine.connect() as conn:
        rows = conn.execute(query).all()
        total = len(rows) if show_all else conn.execute(sa.select(sa.func.count()).where(*wanted)).scalar_one()
    now = datetime.now(timezone.utc)
    table = Table("reference", "stage", "unit", "next deadline (Oslo)", "status")
    for r in rows:
        due = r.next_due.replace(tzinfo=timezone.utc) if r.next_due and r.next_due.tzinfo is None else r.next_due
        flag = "paused" if r.paused_since else ("[red]OVERDUE[/]" if due and due < now else "")
        table.add_row(r.reference, r.phase, r.unit, _local(due), flag)
    out.print(table)
    if len(rows) < total:  # on stderr, so that a pipe gets the table alone
        err.print(f"showing {len(rows)} of {total}; use --limit N or --all for more", highlight=False)


# -- audit -----------------------------------------------------------------------------------------------


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


# -- definition versions -----------------------------------------------------------------------------------


def _version_of(text: str, pathway_id: str) -> tuple[str, int]:
    name, _, version = text.rpartition("@")
    try:
        return (name or pathway_id, int(version.lstrip("v")))
    except ValueError:
        raise typer.BadParameter(f"expected a version like 2 or krisesenter@2, not {text!r}") from None


@app.command()
def migrate(
    from_version: Annotated[str, typer.Option("--from", help="Version the open cases are on (2 or krisesenter@2).")],
    to_version: Annotated[str, typer.Option("--to", help="Version to move them to.")],
    map_file: Annotated[Path, typer.Option("--map", help="YAML mapping old checkpoint code → new code.")],
    actor: Actor,
    pathway_id: Annotated[str, typer.Option("--pathway")] = "krisesenter",
    reason: Annotated[str, typer.Option("--reason", "-r")] = "pathway definition updated",
    apply: Annotated[bool, typer.Option("--apply", help="Really move the cases (default: dry run).")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Move open cases to a new definition version with an explicit checkpoint mapping (dry run by default)."""
    from ruamel.yaml import YAML

    from pathway import services

    core = _core(database_url)
    try:
        source = core.catalog.resolve(*_version_of(from_version, pathway_id))
        target = core.catalog.resolve(*_version_of(to_version, pathway_id))
    except ForlopError as exc:
        raise _fail(exc, 2) from None
    try:
        mapping = YAML(typ="safe").load(map_file.read_text(encoding="utf-8")) or {}
    except Exception as exc:  # noqa: BLE001 - any YAML/IO failure is a usage error here
        err.print(f"{map_file}: cannot read the mapping: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        err.print(f"{map_file}:1:1: (mapping): expected old code: new code pairs", markup=False)
        raise typer.Exit(2)
    with _progress() as progress:
        task = progress.add_task("migrating" if apply else "checking", total=None)
        summary = services.migrate_cases(uow_factory=core.uow, source=source, target=target, mapping=mapping,
                                         actor=actor, reason=reason, apply=apply,
                                         progress=lambda n: progress.advance(task, n))
    if summary.unmapped:
        err.print(f"refused: checkpoints in use are not mapped: {', '.join(sorted(summary.unmapped))}",
                  markup=False, soft_wrap=True)
        raise typer.Exit(2)
    if summary.refused and not summary.moved:
        for why, n in summary.refused.items():
            err.print(f"refused ({n}): {why}", markup=False, soft_wrap=True)
        raise typer.Exit(2)
    verb = "moved" if apply else "would move"
    out.print(f"{_count(summary.open_cases, 'open case')} on {source.id} v{source.version}; {verb} {summary.moved} "
              f"to v{target.version}" + ("" if apply else " (dry run; add --apply)"))
    for why, n in summary.refused.items():
        out.print(f"  not moved ({n}): {why}", markup=False)


# -- keys ----------------------------------------------------------------------------------------------------


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


# -- users ----------------------------------------------------------------------------------------------------


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


# -- reminders ------------------------------------------------------------------------------------------------


@app.command()
def scheduler(database_url: DatabaseUrl = None) -> None:
    """Run the reminder scan and the outbox dispatcher as their own process (until SIGTERM or Ctrl-C)."""
    import signal

    from pathway.scheduler import build_scheduler

    core = _core(database_url)
    sched = build_scheduler(core, blocking=True)

    def stop(*_: object) -> None:
        # Finish the job that is running (a scan batch, a delivery) and stop cleanly.
        sched.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    err.print(f"scheduler: scan every {core.settings.scan_interval_seconds}s, "
              f"outbox every {core.settings.dispatch_interval_seconds}s")
    try:
        sched.start()
    except KeyboardInterrupt:
        pass
    core.close()


@app.command()
def scan(
    now: Annotated[Optional[str], typer.Option(help="Scan as of this time (ISO 8601); default now.")] = None,
    dispatch: Annotated[bool, typer.Option(help="Also deliver the outbox once.")] = True,
    database_url: DatabaseUrl = None,
) -> None:
    """Run one reminder scan (and one outbox delivery) now, and print what it did."""
    from pathway.scheduler import run_dispatch, run_scan

    core = _core(database_url)
    at = _parse_time(now)
    result = run_scan(core, now=at)
    out.print(f"scan: {_count(result.steps, 'step')}, {_count(result.reminders, 'reminder')}, "
              f"{result.notifications} inbox, {result.outbox} outbox, {result.unrouted} without recipient")
    if dispatch:
        sent = run_dispatch(core, now=at)
        out.print(f"outbox: {sent.sent} sent, {sent.retried} to retry, {sent.dead} dead")


@reports_app.command("snapshot")
def reports_snapshot(database_url: DatabaseUrl = None) -> None:
    """Compute the default timeliness report of every unit now and store it (the scheduler does this every
    FORLOP_REPORT_SNAPSHOT_MINUTES); the API answers the default report from it."""
    import time

    from pathway.scheduler import run_report_snapshots

    core = _core(database_url)
    began = time.perf_counter()
    written = run_report_snapshots(core)
    out.print(f"report snapshots: {written} written in {time.perf_counter() - began:.1f} s")
    core.close()


@outbox_app.command("list")
def outbox_list(status: Annotated[str, typer.Option(help="dead, pending, sending, sent or all")] = "dead",
                database_url: DatabaseUrl = None) -> None:
    """List outbox messages (by default the dead letters)."""
    from pathway.store.outbox import list_outbox

    core = _core(database_url)
    table = Table("id", "channel", "recipient", "status", "attempts", "last error")
    for r in list_outbox(engine=core.engine, status=None if status == "all" else status):
        table.add_row(str(r.id), r.channel, r.username, r.status, str(r.attempts), r.last_error or "")
    out.print(table)


@outbox_app.command("retry")
def outbox_retry(ids: Annotated[Optional[list[str]], typer.Argument(help="Outbox ids; none: every dead letter.")] = None,
                 database_url: DatabaseUrl = None) -> None:
    """Give dead-letter messages a fresh set of delivery attempts."""
    import uuid as _uuid

    from pathway.store.outbox import retry_dead

    core = _core(database_url)
    try:
        wanted = [_uuid.UUID(i) for i in ids] if ids else None
    except ValueError:
        raise typer.BadParameter("outbox ids are UUIDs (see `forlop outbox list`)") from None
    n = retry_dead(engine=core.engine, now=datetime.now(timezone.utc), ids=wanted)
    out.print(f"{_count(n, 'message')} queued again")


# -- demo and server ----------------------------------------------------------------------------------------


@app.command()
def demo(
    database_url: DatabaseUrl = None,
    cases: Annotated[int, typer.Option(min=0, max=100_000, help="How many synthetic cases (0: only the demo users).")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data set).")] = 2026,
    reset: Annotated[bool, typer.Option(help="Delete an existing SQLite demo database first.")] = False,
) -> None:
    """Seed a synthetic data set: cases at every stage, some paused, overdue, with children, closed with each outcome."""
    from pathway.demo import seed_demo
    from pathway.settings import is_demo_allowed

    settings = _settings(database_url)
    if not is_demo_allowed(settings):
        err.print("error: demo data is refused outside development, demo and test (FORLOP_ENV)")
        raise typer.Exit(2)
    if reset and settings.database_url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(settings.database_url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    core = _core(database_url)
    with _progress() as progress:
        task = progress.add_task("seeding synthetic cases", total=cases)
        summary = seed_demo(core, cases=cases, seed=seed, progress=lambda n: progress.advance(task, n))
    out.print(summary)


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Default from FORLOP_HOST (127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Default from FORLOP_PORT (8000).")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
    database_url: DatabaseUrl = None,
) -> None:
    """Run the HTTP server (migrates the database first)."""
    import signal

    import uvicorn

    settings = _settings(database_url)
    core = _core(database_url)  # migrate once, before any worker starts
    core.close()
    if database_url:
        os.environ["FORLOP_DATABASE_URL"] = database_url
    err.print(f"Forløp on http://{host or settings.host}:{port or settings.port}  (database: {settings.database_url.split('@')[-1]})")
    if workers > 1:
        _nodelay_listening_socket()
    # SIGTERM and SIGINT: stop accepting, let the requests in flight finish (at most the grace period), exit 0.
    # After that shutdown uvicorn re-raises the signal it caught to the handler it found. For SIGINT that is
    # Python's KeyboardInterrupt, which uvicorn.run takes as the normal end; SIGTERM's default handler would kill
    # the process instead (exit 143 with one worker). So SIGTERM is made to mean what Ctrl-C means.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        uvicorn.run("api.main:app", host=host or settings.host, port=port or settings.port, workers=workers,
                    log_level="info", proxy_headers=False, timeout_graceful_shutdown=settings.shutdown_grace_seconds)
    finally:
        _reap_resource_tracker()


def _reap_resource_tracker() -> None:
    """The workers are started with multiprocessing's spawn, which also starts a resource tracker process. It ends
    only when it reads end-of-file from this process, i.e. after this process has exited, so it would outlive
    ``forlop serve`` (and hold its stdout open) for a moment. Stop it and wait for it: when serve exits, nothing it
    started is left. The call is private to multiprocessing (3.8+); without it the tracker still ends by itself."""
    from multiprocessing import resource_tracker

    stop = getattr(resource_tracker._resource_tracker, "_stop", None)
    if stop is not None:
        stop()


def _nodelay_listening_socket() -> None:
    """With several workers uvicorn makes the listening socket itself, with protocol 0, so asyncio never sets
    TCP_NODELAY on accepted connections and every keep-alive response waits ~40 ms for a delayed ACK
    (measured: /healthz 21 → 299 req/s with one client). Re-wrap the socket with IPPROTO_TCP."""
    import socket

    import uvicorn.config

    original = uvicorn.config.Config.bind_socket

    def bind_socket(self: uvicorn.config.Config) -> socket.socket:
        sock = original(self)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        return sock

    uvicorn.config.Config.bind_socket = bind_socket  # type: ignore[method-assign]


def main() -> None:
    """Entry point: domain and usage errors are handled per command; the database being away is handled here."""
    import sqlalchemy as sa

    from pathway.store.failures import database_failure

    try:
        app()
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
        failure = database_failure(exc)
        orig = getattr(exc, "orig", None) or exc
        if failure is None:  # e.g. a constraint: its text may quote a value, so only its type
            err.print(f"error: database error ({type(orig).__name__})", markup=False)
            raise SystemExit(1) from None
        # The driver's first line says which server or file and why ("Connection refused", "disk is full").
        first = (str(orig).strip().splitlines() or [""])[0][:200]
        err.print(f"error: {failure.message} ({type(orig).__name__}: {first})", markup=False, highlight=False,
                  soft_wrap=True)
        raise SystemExit(1) from None
    except ForlopError as exc:  # a command let one through (a bad key spec, a missing definition version, ...)
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
