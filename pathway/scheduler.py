"""The APScheduler jobs: scan for steps that reached a rung of their reminder ladder, tell each unit's managers of its
overdue steps once a working day (``pathway.store.digest``), deliver the outbox, keep the managers'
timeliness figures fresh in the background (``pathway.metrics.snapshots``), and once a day erase the closed cases
whose retention period has ended (``pathway.services.retention``).

Runs inside the server process by default (``FORLOP_SCHEDULER=embedded``) or as its own process
(``forlop scheduler``) when several API processes share one database. Any number of schedulers may run at
once: the scan's unique keys and row locks make each reminder be raised once, the digest's day key each digest, and
retention locks each case it erases and checks again that it is due, so a case is erased once.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta, timezone
from typing import TYPE_CHECKING

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from notifications.dispatcher import DispatchResult, RetryPolicy
from pathway.calendar import OSLO
from pathway.errors import DatabaseError
from pathway.services.retention import SCHEDULER, RetentionResult, run_retention
from pathway.store.idempotency import purge_answers
from pathway.store.digest import DigestResult, send_overdue_digest
from pathway.store.outbox import dispatch
from pathway.store.scan import ScanResult, route, scan
from pathway.metrics.snapshots import refresh_snapshots

if TYPE_CHECKING:
    from pathway.bootstrap import Forlop

log = logging.getLogger("forlop.scheduler")
RETENTION_AT = time(2, 30)  # Oslo: the daily erasure runs at night, away from the day's work


def run_scan(core: Forlop, *, now: datetime | None = None) -> ScanResult:
    """One scan for due rungs, then routing of what it (or an earlier, interrupted run) raised."""
    now = now or datetime.now(timezone.utc)
    result = scan(engine=core.engine, resolve=core.catalog.resolve, now=now)
    routed = route(engine=core.engine, resolve=core.catalog.resolve, public_url=core.settings.public_url, now=now)
    result.notifications, result.outbox, result.unrouted = routed.notifications, routed.outbox, routed.unrouted
    if result.reminders or result.unrouted:
        log.info("scan: %d steps, %d reminders, %d inbox, %d outbox, %d without recipient", result.steps,
                 result.reminders, result.notifications, result.outbox, result.unrouted)
    return result


def run_digest(core: Forlop, *, now: datetime | None = None) -> DigestResult:
    """The day's digest of overdue steps for each unit's managers, when it is due and not yet made."""
    result = send_overdue_digest(engine=core.engine, resolve=core.catalog.resolve, public_url=core.settings.public_url,
                                 now=now or datetime.now(timezone.utc), at=core.settings.manager_digest_at,
                                 unit_name=core.settings.unit_name)
    if result.units:
        log.info("overdue digest: %d units, %d steps, %d inbox, %d outbox", result.units, result.steps,
                 result.notifications, result.outbox)
    return result


def run_dispatch(core: Forlop, *, now: datetime | None = None) -> DispatchResult:
    policy = RetryPolicy(max_attempts=core.settings.outbox_max_attempts,
                         base_delay=timedelta(seconds=core.settings.outbox_base_delay_seconds),
                         lease=timedelta(seconds=core.settings.outbox_lease_seconds))
    result = dispatch(engine=core.engine, email=core.email_channel, webhook=core.webhook_channel,
                      now=now or datetime.now(timezone.utc), policy=policy)
    if result.sent or result.retried or result.dead:
        log.info("outbox: %d sent, %d to retry, %d dead", result.sent, result.retried, result.dead)
    return result


def run_report_snapshots(core: Forlop, *, now: datetime | None = None) -> int:
    """Compute and store the timeliness figures of the current tertial (and of an earlier one missing or a day old)
    for every unit and all units; returns how many rows were written."""
    written = refresh_snapshots(engine=core.engine, resolve=core.catalog.resolve,
                                now=now or datetime.now(timezone.utc), keys=core.keys)
    log.info("report snapshots: %d written", written)
    return written


def run_retention_job(core: Forlop, *, now: datetime | None = None) -> RetentionResult:
    """Erase the closed cases whose retention period has ended and that no legal hold stops; and forget the stored
    answers to idempotent requests older than a day (they hold a case's texts as the API answered them)."""
    now = now or datetime.now(timezone.utc)
    purged = purge_answers(core.engine, now=now)
    if purged:
        log.info("idempotency answers: %d older than a day forgotten", purged)
    return run_retention(engine=core.engine, settings=core.settings, now=now, by=SCHEDULER)


def _guarded(job, core: Forlop) -> None:  # type: ignore[no-untyped-def]
    # A database outage must not kill the scheduler: log it (no data) and try again at the next interval.
    try:
        job(core)
    except (DatabaseError, sa.exc.SQLAlchemyError) as exc:  # the store's, or SQLAlchemy's own (a dropped transaction)
        name = exc.driver_error if isinstance(exc, DatabaseError) else type(exc).__name__
        log.error("%s skipped: database unavailable (%s)", job.__name__, name)


def build_scheduler(core: Forlop, *, blocking: bool = False) -> BaseScheduler:
    """A scheduler with the scan, digest, dispatch, report snapshot and daily retention jobs; never two runs of the
    same job at once in one process. The digest looks as often as the scan (a look is one indexed read once the day's is made)."""
    scheduler: BaseScheduler = (BlockingScheduler if blocking else BackgroundScheduler)(timezone=timezone.utc)
    now = datetime.now(timezone.utc)
    jobs = [(run_scan, core.settings.scan_interval_seconds), (run_digest, core.settings.scan_interval_seconds),
            (run_dispatch, core.settings.dispatch_interval_seconds)]
    if core.settings.report_snapshot_minutes:
        jobs.append((run_report_snapshots, core.settings.report_snapshot_minutes * 60))
    for job, seconds in jobs:
        scheduler.add_job(_guarded, "interval", args=[job, core], seconds=seconds, id=job.__name__,
                          max_instances=1, coalesce=True, next_run_time=now, misfire_grace_time=None)
    # Once a day; a night missed (the process was down) is not made up at start: the next night erases what it
    # would have, as a case due stays due.
    scheduler.add_job(_guarded, "cron", args=[run_retention_job, core], hour=RETENTION_AT.hour,
                      minute=RETENTION_AT.minute, timezone=OSLO, id=run_retention_job.__name__, max_instances=1,
                      coalesce=True, misfire_grace_time=3600)
    return scheduler
