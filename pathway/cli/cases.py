"""The ``forlop case`` commands: open, show, change and list cases."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from datetime import datetime, timezone
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from pathway.cli.common import (
    Actor, DatabaseUrl, Reason, Version, _core, _fail, _local, _parse_time, case_app, err, out,
)
from pathway.errors import ForlopError

if TYPE_CHECKING:
    from pathway.accounts import User
    from pathway.bootstrap import Forlop
    from pathway.case import Command
    from pathway.policy import CaseAccess
    from pathway.store.access import Writer

CLIENT = "cli"  # where the access log says a CLI read or write came from
# Recorded after the fact: when the work was done (the event keeps both times; deadlines and figures use this one).
At = Annotated[Optional[str], typer.Option(
    "--at", help="When it was done, if earlier than now: ISO 8601, Oslo time if no offset; not before the case's "
                 "previous change.")]


def _logged(user: User, action: str, reference: str | None, *, break_glass: bool = False,
            status: int = 200) -> Writer:
    """The access-log row of a CLI read or write: the same writer as the API's, from the client "cli"."""
    from pathway.store.access import access_writer

    return access_writer(username=user.username, role=user.role, action=action, client=CLIENT,
                         case_reference=reference, break_glass=break_glass, status=status)


def _acting(core: Forlop, actor: str) -> User:
    """The user named by ``--as``: it must be an active user, and the access policy then applies to them."""
    from pathway import policy

    with core.engine.connect() as conn:
        return policy.acting_user(conn, actor)


def _let_at(core: Forlop, actor: str, reference: str, action: str, *,
            write: bool = False) -> tuple[User, CaseAccess]:
    """The acting user and their access to the case (``write``: to change it), as the API's policy answers it; a
    refusal is logged (as the API logs one) and raised: an unknown case as not found, another unit's case, or a
    change under read-only emergency access, as not permitted."""
    from pathway import policy
    from pathway.errors import NotFound, NotPermitted
    from pathway.store.access import apart

    with core.engine.connect() as conn:
        user = policy.acting_user(conn, actor)
        access = policy.case_access(conn, user, reference, now=datetime.now(timezone.utc))
    if not access.allowed:
        known = access.case_id is not None
        apart(core.engine, _logged(user, action, reference if known else None, status=403 if known else 404))
        if not known:
            raise NotFound("case", reference)
        raise NotPermitted(user.username, "see or change case {reference}: it is not a case of their unit",
                           reference=reference)
    if write and not access.write:
        apart(core.engine, _logged(user, action, reference, break_glass=access.break_glass, status=403))
        raise NotPermitted(user.username, "change case {reference}: their emergency access is read-only (ask for "
                                          "it again with a write reason)", reference=reference)
    return user, access


@case_app.command("open")
def case_open(
    unit: Annotated[str, typer.Option(help="The crisis-centre unit that owns the case.")],
    actor: Actor,
    pathway_id: Annotated[Optional[str], typer.Option(
        "--pathway", help="Pathway id; default FORLOP_DEFAULT_PATHWAY (krisesenter).")] = None,
    first_contact: Annotated[Optional[str], typer.Option(help="When first contact was received (ISO 8601, Oslo time if no offset); default now.")] = None,
    condition: Annotated[list[str], typer.Option(help="A condition that applies, e.g. children, shelter_stay.")] = [],  # noqa: B006
    reason: Reason = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Open a case at first contact and print its reference (only that, so `REF=$(forlop case open ...)` keeps it)."""
    from pathway import services

    from pathway import policy
    from pathway.errors import NotPermitted

    first_contact_at = _parse_time(first_contact)  # bad input is a usage error (exit 2) before anything is asked
    core = _core(database_url)
    at = services.now()
    try:
        user = _acting(core, actor)
        if not policy.may_open_in(user, unit):
            raise NotPermitted(user.username, "open a case in unit '{unit}': a coordinator of that unit opens it", unit=unit)
        case = services.open_case(
            uow=core.uow(), pathway_id=pathway_id or core.settings.default_pathway, unit=unit, first_contact_at=first_contact_at or at,
            actor=user.username, keys=core.keys, index_key=core.settings.index_key,
            reference_prefix=core.settings.reference_prefix, conditions=condition, reason=reason, at=at,
            also=lambda conn, opened: _logged(user, "case.open", opened.reference)(conn), channel="cli",
        )
    except ForlopError as exc:
        raise _fail(exc) from None
    out.print(case.reference, markup=False, highlight=False)


@case_app.command("add-child")
def case_add_child(
    reference: Annotated[str, typer.Argument(help="The adult's case the child's pathway is part of.")],
    actor: Actor,
    birth_year: Annotated[int, typer.Option(help="The child's birth year.")],
    first_name: Annotated[Optional[str], typer.Option(
        help="The child's first name; leave it out to be asked for it (so that it stays out of the shell's "
             "history).")] = None,
    school: Annotated[Optional[str], typer.Option(help="The school or kindergarten (start or transfer).")] = None,
    coordinator: Annotated[Optional[str], typer.Option(
        help="The child's own coordinator (barnekoordinator), a coordinator of the unit; default: the case's.")] = None,
    condition: Annotated[list[str], typer.Option(
        help="A condition of the child's pathway, e.g. shared_parental_responsibility.")] = [],  # noqa: B006
    pathway_id: Annotated[str, typer.Option("--pathway", help="The child pathway's id.")] = "barn",
    version: Annotated[Optional[int], typer.Option(help="The adult's case version you read (a stale one is refused).")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Open a child's pathway as part of a case and print its reference (the child's own steps, deadlines and
    reminders; the child's record is encrypted)."""
    from pydantic import ValidationError

    from pathway import services
    from pathway.people import ChildRecord

    name = first_name if first_name is not None else typer.prompt("The child's first name", hide_input=False)
    try:
        child = ChildRecord(first_name=name, birth_year=birth_year, school=school)
    except ValidationError as exc:
        fields = ", ".join(str(e["loc"][0]) for e in exc.errors())
        raise typer.BadParameter(f"not a valid child record ({fields})") from None
    core = _core(database_url)
    try:
        user, access = _let_at(core, actor, reference, "case.children", write=True)
        case = services.open_child_pathway(
            uow=core.uow(), reference=reference, expected_version=version, child=child, actor=user.username,
            keys=core.keys, reference_prefix=core.settings.reference_prefix, pathway_id=pathway_id,
            coordinator=coordinator, conditions=condition, channel="cli",
            also=lambda conn, _: _logged(user, "case.children", reference, break_glass=access.break_glass)(conn))
    except ForlopError as exc:
        raise _fail(exc) from None
    out.print(case.reference, markup=False, highlight=False)


@case_app.command("show")
def case_show(reference: str, actor: Actor, database_url: DatabaseUrl = None,
              as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Where a case stands: phase, version, steps with deadlines, consents and handovers (the read is logged)."""
    from pathway import services

    core = _core(database_url)
    try:
        user, access = _let_at(core, actor, reference, "case.read")
        with core.uow(snapshot=True) as uow:  # the read and its access-log row: one transaction
            case = uow.cases.get(reference)
            _logged(user, "case.read", reference, break_glass=access.break_glass)(uow.conn)
            uow.commit()
    except ForlopError as exc:
        raise _fail(exc) from None
    if as_json:
        sys.stdout.write(json.dumps(case.snapshot(), indent=2, ensure_ascii=False) + "\n")
        return
    now = services.now()
    d = case.definition
    out.print(f"[bold]{case.reference}[/]  {d.id} v{d.version}  phase: [bold]{case.phase}[/]  version: {case.version}"
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


# The readable document is the pages' (its words are in their catalog, its template theirs): named by its import path,
# as ``forlop serve`` names the app, since the command line sits below the API and imports nothing of it.
DOCUMENT = "api.web.person_copy:render_document"


@case_app.command("copy")
def case_copy(
    reference: str, actor: Actor, database_url: DatabaseUrl = None,
    output_format: Annotated[str, typer.Option("--format", help="json, or html (a readable document, printable)")] = "json",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to this file (default: stdout).")] = None,
    lang: Annotated[str, typer.Option(help="The document's language: nb or en")] = "nb",
) -> None:
    """The person's copy (right of access): everything recorded about the person of a case, with the access log.
    For an administrator or the case's coordinator; the export is itself logged."""
    from importlib import import_module

    from pathway import policy
    from pathway.errors import NotFound
    from pathway.store.access import apart
    from pathway.services.person_copy import person_copy, to_json

    if output_format not in ("json", "html") or lang not in ("nb", "en"):
        err.print("error: --format is json or html, --lang nb or en")
        raise typer.Exit(2)
    core = _core(database_url)
    now = datetime.now(timezone.utc)
    try:
        with core.uow(snapshot=True) as uow:  # the check, the read and its access-log row: one transaction
            user = policy.acting_user(uow.conn, actor)
            access = policy.may_export_copy(uow.conn, user, reference, now=now)
            if access.allowed:
                copy = person_copy(uow, reference=reference, keys=core.keys, now=now)
                for read in (reference, *(c.case.reference for c in copy.children)):  # each pathway it read
                    _logged(user, "case.copy", read)(uow.conn)
                uow.commit()
        if not access.allowed:
            known = access.case_id is not None
            apart(core.engine, _logged(user, "case.copy", reference if known else None, status=404))
            raise NotFound("case", reference)
    except ForlopError as exc:
        raise _fail(exc) from None
    if output_format == "json":
        text = json.dumps(to_json(copy), indent=2, ensure_ascii=False) + "\n"
    else:
        module, name = DOCUMENT.split(":")
        text = getattr(import_module(module), name)(copy, lang, resolve=core.catalog.resolve,
                                                    unit_name=core.settings.unit_name, standalone=True)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"{reference}: the person's copy written to {output}")


def _run(reference: str, version: int | None, database_url: str | None, actor: str,
         command: Callable[[ModuleType], Command]) -> None:
    """Build the command (from ``pathway.case.commands``, imported only when one runs, so that ``--help`` stays
    fast), hand it to the handler the API and the pages use too, and say where the case now stands."""
    from pathway import services
    from pathway.case import commands

    core = _core(database_url)
    try:
        built = command(commands)
        user, access = _let_at(core, actor, reference, built.action, write=True)
        case, _ = services.execute(uow=core.uow(), reference=reference, expected_version=version, command=built,
                                   actor=user.username, channel="cli",
                                   also=_logged(user, built.action, reference, break_glass=access.break_glass))
    except ForlopError as exc:
        raise _fail(exc) from None
    out.print(f"{case.reference}: phase {case.phase}, version {case.version}")


@case_app.command("complete")
def case_complete(reference: str, code: str, actor: Actor, version: Version = None,
                  note: Annotated[Optional[str], typer.Option()] = None, at: At = None,
                  database_url: DatabaseUrl = None) -> None:
    """Mark a checkpoint (or ad-hoc step) done, now or --at when it was done."""
    effective_at = _parse_time(at)
    _run(reference, version, database_url, actor, lambda c: c.CompleteStep(code, note=note, effective_at=effective_at))


@case_app.command("skip")
def case_skip(reference: str, code: str, actor: Actor, reason: Annotated[str, typer.Option("--reason", "-r")],
              version: Version = None, database_url: DatabaseUrl = None) -> None:
    """Mark a checkpoint not applicable for this person."""
    _run(reference, version, database_url, actor, lambda c: c.SkipStep(code, reason=reason))


@case_app.command("advance")
def case_advance(reference: str, trigger: str, actor: Actor, reason: Reason = None, version: Version = None,
                 database_url: DatabaseUrl = None) -> None:
    """Move the case to another phase (e.g. start_support, move_out, back_to_intake)."""
    _run(reference, version, database_url, actor, lambda c: c.Advance(trigger, reason=reason))


@case_app.command("pause")
def case_pause(reference: str, actor: Actor, reason: Annotated[str, typer.Option("--reason", "-r")],
               version: Version = None, at: At = None, database_url: DatabaseUrl = None) -> None:
    """Stop the clock, now or from --at; paused time does not count against deadlines."""
    effective_at = _parse_time(at)
    _run(reference, version, database_url, actor, lambda c: c.Pause(reason=reason, effective_at=effective_at))


@case_app.command("resume")
def case_resume(reference: str, actor: Actor, reason: Reason = None, version: Version = None, at: At = None,
                database_url: DatabaseUrl = None) -> None:
    """Restart the clock, now or from --at; open deadlines move by the paused time."""
    effective_at = _parse_time(at)
    _run(reference, version, database_url, actor, lambda c: c.Resume(reason=reason, effective_at=effective_at))


@case_app.command("consent")
def case_consent(reference: str, agency: str, actor: Actor,
                 scope: Annotated[list[str], typer.Option(help="What may be shared (repeat).")] = [],  # noqa: B006
                 withdraw: Annotated[bool, typer.Option(help="Record a withdrawal instead.")] = False,
                 reason: Reason = None, version: Version = None, at: At = None,
                 database_url: DatabaseUrl = None) -> None:
    """Record consent to share with an agency (or its withdrawal), now or --at when it was given."""
    effective_at = _parse_time(at)
    _run(reference, version, database_url, actor,
         lambda c: c.RecordConsent(agency, scope=tuple(scope), given=not withdraw, reason=reason,
                                   effective_at=effective_at))


@case_app.command("coordinator")
def case_coordinator(reference: str, coordinator: str, actor: Actor, reason: Reason = None, version: Version = None,
                     database_url: DatabaseUrl = None) -> None:
    """Assign the case's coordinator."""
    _run(reference, version, database_url, actor, lambda c: c.AssignCoordinator(coordinator, reason=reason))


@case_app.command("handover")
def case_handover(reference: str, code: str, actor: Actor,
                  agency: Annotated[Optional[str], typer.Option(
                      help="Which agency, where the checkpoint names several (K9: nav or housing).")] = None,
                  legal_basis: Annotated[Optional[str], typer.Option(
                      help="Without consent, on a legal basis the pathway gives the agency (the definition's "
                           "legal_bases, e.g. avert_crime for the police, child_welfare_duty for child welfare); "
                           "needs --reason.")] = None,
                  note: Annotated[Optional[str], typer.Option(
                      help="A note to the agency, shown to it alone (never an address).")] = None,
                  reason: Reason = None, version: Version = None, database_url: DatabaseUrl = None) -> None:
    """Create a handover task (needs consent for the agency, or a legal basis with a reason)."""
    _run(reference, version, database_url, actor,
         lambda c: c.CreateHandover(code, legal_basis=legal_basis, reason=reason, agency=agency, note=note))


@case_app.command("risk")
def case_risk(reference: str, level: Annotated[str, typer.Argument(help="low, medium or high")], actor: Actor,
              reason: Reason = None, version: Version = None, database_url: DatabaseUrl = None) -> None:
    """Record the threat level of a threat assessment (at high risk the police's handover is due the same day)."""
    _run(reference, version, database_url, actor, lambda c: c.RecordRisk(level, reason=reason))


@case_app.command("close")
def case_close(reference: str, outcome: str, actor: Actor, reason: Reason = None, version: Version = None,
               database_url: DatabaseUrl = None) -> None:
    """Close with an outcome code (safe_housing, returned_to_abuser, moved_away, declined, transferred, ended_early)."""
    _run(reference, version, database_url, actor, lambda c: c.Close(outcome, reason=reason))


@case_app.command("list")
def case_list(actor: Actor, database_url: DatabaseUrl = None,
              limit: Annotated[int, typer.Option(min=1, max=10_000, help="Show at most this many.")] = 50,
              show_all: Annotated[bool, typer.Option("--all", help="Show every open case.")] = False) -> None:
    """The open cases of your unit with phase and next deadline (soonest first); says on stderr when there are more
    than shown. The read is logged."""
    from pathway import policy
    from pathway.views.cases import case_counts, case_list

    core = _core(database_url)
    now = datetime.now(timezone.utc)
    try:
        user = _acting(core, actor)
        unit = policy.listed_unit(user)  # the same rule as the API's list: a coordinator's own unit
        with core.uow(snapshot=True) as uow:  # the list and its access-log row: one transaction
            listed = case_list(uow.conn, unit=unit, now=now, status="open", sort="next_due", key_ring=core.keys,
                               limit=None if show_all else limit)
            total = case_counts(uow.conn, unit=unit, now=now)["open"]
            _logged(user, "case.list", None)(uow.conn)
            uow.commit()
    except ForlopError as exc:
        raise _fail(exc) from None
    table = Table("reference", "phase", "unit", "next deadline (Oslo)", "status")
    for c in listed.items:
        flag = "paused" if c["paused"] else ("[red]OVERDUE[/]" if c["overdue"] else "")
        table.add_row(c["reference"], c["phase"], c["unit"], _local(c["next_due_at"]), flag)
    out.print(table)
    if len(listed.items) < total:  # on stderr, so that a pipe gets the table alone
        err.print(f"showing {len(listed.items)} of {total}; use --limit N or --all for more", highlight=False)
