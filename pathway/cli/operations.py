"""Running Forløp: the scheduler, one-off scans, report snapshots, the outbox, demo data and the HTTP server."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from pathway.cli.common import (
    DatabaseUrl, _core, _count, _parse_time, _problems, _progress, _settings, app, err, out, outbox_app, reports_app,
)
from pathway.errors import DefinitionError


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
    """Compute the timeliness figures of the current tertial, and of every earlier one of the last three years that
    is missing or a day old, for every unit, and store them (the scheduler does this every
    FORLOP_REPORT_SNAPSHOT_MINUTES); the API and the pages answer any period from them."""
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
    """Seed a synthetic data set: cases at every phase, some paused, overdue, with children, closed with each outcome."""
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
    try:
        core.identity  # the identity providers' file (FORLOP_OIDC_CONFIG): a mistake in it stops the start here
    except DefinitionError as exc:
        raise _problems(exc) from None
    finally:
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
