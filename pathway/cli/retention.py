"""``forlop retention``: what would be erased when (a dry run), erasing what is due, legal holds, and the erasure log.
Administrators only (``--as``); every command writes its access-log row."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from pathway.cli.admin import CLIENT
from pathway.cli.admin import _administrator as administrator
from pathway.cli.common import DatabaseUrl, _core, _count, _fail, _local, _progress, err, out, retention_app
from pathway.errors import ForlopError, InvalidArgument

if TYPE_CHECKING:
    from pathway.bootstrap import Forlop
    from pathway.services.retention import Due
    from pathway.services.users import Actor as Acting

Admin = Annotated[str, typer.Option("--as", envvar="FORLOP_ACTOR", help="The administrator acting (user name).")]
HoldReason = Annotated[str, typer.Option("--reason", "-r", help="Why, 1 to 2000 characters (kept sealed with the "
                                                                "case; never in a log).")]


def _administrator(core: Forlop, actor: str) -> Acting:
    return administrator(core, actor, "erase cases or set legal holds: an administrator does")


def _log(core: Forlop, user: Acting, action: str, *, reason: str | None = None) -> None:
    """The access-log row of a command that changed no case (a transaction of its own)."""
    from pathway.store.access import access_writer, apart

    apart(core.engine, access_writer(username=user.username, role=user.role, action=action, client=CLIENT,
                                     reason=reason))


def _held(due: Due) -> str:
    return "legal hold" if due.held else "child's pathway open" if due.waiting else ""


@retention_app.command("list")
def retention_list(
    actor: Admin,
    until: Annotated[Optional[datetime], typer.Option(
        formats=["%Y-%m-%d"], help="Only the cases whose period ends by this day (Oslo); default: every closed case "
                                   "not yet erased.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """A dry run: every closed case not yet erased, when it will be, and what stops it (nothing is changed)."""
    from rich.table import Table

    from pathway.calendar import OSLO
    from pathway.services.retention import due_for_erasure

    core = _core(database_url)
    now = datetime.now(timezone.utc)
    try:
        user = _administrator(core, actor)
        with core.engine.connect() as conn:
            listed = due_for_erasure(conn, settings=core.settings, now=now,
                                     until=None if until is None else until.replace(hour=23, minute=59, tzinfo=OSLO))
        _log(core, user, "retention.list")
    except ForlopError as exc:
        raise _fail(exc) from None
    table = Table("case", "unit", "closed (Oslo)", "erase from (Oslo)", "held")
    for d in listed:
        table.add_row(d.reference, d.unit, _local(d.closed_at), _local(d.erase_from), _held(d))
    out.print(table)
    now_due = sum(d.is_due(now) for d in listed)
    err.print(f"{_count(len(listed), 'closed case')} not yet erased; {now_due} due now", highlight=False)


@retention_app.command("run")
def retention_run(
    actor: Admin,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before erasing.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Erase every closed case whose retention period has ended and that no legal hold stops (what the scheduler
    does each night). Erasure cannot be undone: the case's key is destroyed."""
    from pathway.services.retention import due_for_erasure, run_retention

    core = _core(database_url)
    now = datetime.now(timezone.utc)
    try:
        user = _administrator(core, actor)
        with core.engine.connect() as conn:
            ended = due_for_erasure(conn, settings=core.settings, now=now, until=now)
        due = [d for d in ended if d.is_due(now)]
        if not due:
            _log(core, user, "retention.run", reason="nothing due")
            held, waiting = sum(d.held for d in ended), sum(d.waiting and not d.held for d in ended)
            err.print("nothing to erase" + (f"; {held} held" if held else "")
                      + (f"; {waiting} waiting for a child's pathway" if waiting else ""), highlight=False)
            return
        if not yes and not typer.confirm(f"erase {_count(len(due), 'case')} for good?"):
            err.print("nothing erased")
            raise typer.Exit(1)
        with _progress() as progress:
            task = progress.add_task("erasing", total=len(due))
            result = run_retention(engine=core.engine, settings=core.settings, now=now, by=user.username,
                                   progress=lambda n: progress.advance(task, n))
        _log(core, user, "retention.run", reason=f"{len(result.erased)} erased")
    except ForlopError as exc:
        raise _fail(exc) from None
    out.print(f"{_count(len(result.erased), 'case')} erased"
              + (f"; {result.held} held" if result.held else "")
              + (f"; {result.waiting} waiting for a child's pathway" if result.waiting else ""), highlight=False)


def _hold(database_url: str | None, actor: str, reference: str, reason: str, *, lift: bool) -> None:
    from pathway.services import retention as service
    from pathway.store.access import access_writer
    from pathway.store.engine import WRITE

    core = _core(database_url)
    try:
        user = _administrator(core, actor)
        with core.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            change = service.lift_hold if lift else service.set_hold
            change(conn, case_id=service.case_id_of(conn, reference), by=user.username, reason=reason,
                   at=datetime.now(timezone.utc), keys=core.keys)
            access_writer(username=user.username, role=user.role, client=CLIENT, case_reference=reference,
                          action="retention.release" if lift else "retention.hold")(conn)
    except ForlopError as exc:
        raise _fail(exc, 2 if isinstance(exc, InvalidArgument) else 1) from None
    out.print(f"case {reference} " + ("is no longer on legal hold" if lift else "is on legal hold: it is not erased "
                                      "until the hold is lifted"), highlight=False)


@retention_app.command("hold")
def retention_hold(reference: str, actor: Admin, reason: HoldReason, database_url: DatabaseUrl = None) -> None:
    """Put a case on legal hold (a complaint, a court case, an inquiry): it is not erased while the hold is in force.
    A hold on an adult's case also holds its children's pathways, and one on a child's pathway the adult's case."""
    _hold(database_url, actor, reference, reason, lift=False)


@retention_app.command("release")
def retention_release(reference: str, actor: Admin, reason: HoldReason, database_url: DatabaseUrl = None) -> None:
    """Lift the legal hold on a case; the next run erases it if its retention period has ended."""
    _hold(database_url, actor, reference, reason, lift=True)


@retention_app.command("log")
def retention_log(
    actor: Admin,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="The newest this many.")] = 500,
    database_url: DatabaseUrl = None,
) -> None:
    """The erasure log, newest first: which case was erased, when, under which rule and by whom (nothing personal)."""
    from rich.table import Table

    from pathway.services.retention import erasure_log

    core = _core(database_url)
    try:
        user = _administrator(core, actor)
        with core.engine.connect() as conn:
            rows = erasure_log(conn, limit=limit)
        _log(core, user, "retention.log")
    except ForlopError as exc:
        raise _fail(exc) from None
    table = Table("case", "unit", "closed (Oslo)", "erased (Oslo)", "rule", "by")
    for r in rows:
        table.add_row(r["reference"], r["unit"], _local(r["closed_at"]), _local(r["erased_at"]), r["rule"],
                      r["erased_by"])
    out.print(table)
    err.print(f"{_count(len(rows), 'erasure')}", highlight=False)
