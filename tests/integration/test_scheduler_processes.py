"""Schedulers as real processes: two scans at the same moment raise every reminder once (PostgreSQL and SQLite),
and ``forlop scheduler`` scans on its interval and stops cleanly on SIGTERM.

Scans get ``--now``; the scheduler process runs on the wall clock, so its cases are set days in the past.
Only synthetic cases (no person records), example.invalid addresses.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from pathway.bootstrap import Forlop
from pathway.store.tables import notification_t, outbox_t, reminder_t
from tests.suite.processes import spawn

from .support import (
    add_user,
    expected_reminders,
    forlop_env,
    open_case,
    popen_forlop,
    stop_process,
    wait_until,
)

pytestmark = pytest.mark.process

BASE = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)  # Monday 09:00 in Oslo
CASES = 300  # round one has more due steps than one scan batch (1000): both processes get work
ROUNDS = (BASE + timedelta(days=2), BASE + timedelta(days=9), BASE + timedelta(days=40))
SCAN_LINE = re.compile(r"scan: (\d+) steps?, (\d+) reminders?, (\d+) inbox, (\d+) outbox, (\d+) without recipient")

# Both processes import everything and open the database first, then start the scan at the same instant.
GATED = ("import os, sys, time\n"
         "from pathway.cli import main\n"
         "time.sleep(max(0.0, float(os.environ['GO_AT']) - time.time()))\n"
         "sys.argv = ['forlop', *sys.argv[1:]]\n"
         "main()\n")


def counts(core: Forlop) -> dict[str, int]:
    """The reminders, and the inbox and outbox rows they became (not the digests, which tell of no one reminder)."""
    told = reminder_t.c.recipient != "manager"  # manager rungs are raised, and told in the daily digest
    notification = sa.select(notification_t).where(notification_t.c.reminder_id.is_not(None)).subquery()
    outbox = sa.select(outbox_t).where(outbox_t.c.reminder_id.is_not(None)).subquery()
    q = {
        "reminders": sa.select(sa.func.count()).select_from(reminder_t),
        "distinct_reminders": sa.select(sa.func.count()).select_from(
            sa.select(reminder_t.c.step_id, reminder_t.c.rung, reminder_t.c.due_at).distinct().subquery()),
        "distinct_reminder_ids": sa.select(sa.func.count(sa.distinct(reminder_t.c.id))),
        "told": sa.select(sa.func.count()).select_from(reminder_t).where(told),
        "notifications": sa.select(sa.func.count()).select_from(notification),
        "distinct_notifications": sa.select(sa.func.count()).select_from(
            sa.select(notification.c.reminder_id, notification.c.username).distinct().subquery()),
        "outbox": sa.select(sa.func.count()).select_from(outbox),
        "distinct_outbox": sa.select(sa.func.count()).select_from(
            sa.select(outbox.c.reminder_id, outbox.c.username, outbox.c.channel).distinct().subquery()),
        "reminders_without_notification": sa.select(sa.func.count()).select_from(reminder_t).where(
            told, ~sa.exists().where(notification_t.c.reminder_id == reminder_t.c.id)),
    }
    with core.engine.connect() as conn:
        return {name: conn.execute(query).scalar_one() for name, query in q.items()}


def scan_at_once(core: Forlop, now: datetime, processes: int = 2) -> list[tuple[int, ...]]:
    """Start ``processes`` × ``forlop scan --now … --no-dispatch`` before waiting on any; their printed counts."""
    env = forlop_env(core.settings.database_url, GO_AT=str(time.time() + 4.0))
    argv = [sys.executable, "-c", GATED, "scan", "--now", now.isoformat(), "--no-dispatch"]
    procs = [spawn(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(processes)]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=180))
    finally:
        for proc in procs:
            stop_process(proc)
    results = []
    for proc, (stdout, stderr) in zip(procs, outputs):
        assert proc.returncode == 0, f"scan failed ({proc.returncode}): {stderr[-2000:]}"
        assert "database is locked" not in stderr + stdout and "Traceback" not in stderr, stderr[-2000:]
        match = SCAN_LINE.search(stdout)
        assert match, stdout
        results.append(tuple(int(g) for g in match.groups()))
    return results


def test_two_schedulers_at_once_raise_every_reminder_exactly_once(core: Forlop) -> None:
    add_user(core, "k1", email="k1@example.invalid")  # every step's rungs reach the unit's coordinator
    add_user(core, "m1", "manager", email="m1@example.invalid")  # ... but the manager rungs: told in the digest
    for i in range(CASES):
        open_case(core, BASE + timedelta(minutes=7 * i))  # spread over ~a day, so rungs fall due in each round

    previous = counts(core)
    assert previous["reminders"] == 0
    for now in ROUNDS:
        results = scan_at_once(core, now)
        after = counts(core)
        expected = expected_reminders(core, now)
        # No duplicates, at any level.
        assert after["reminders"] == after["distinct_reminders"] == after["distinct_reminder_ids"]
        assert after["notifications"] == after["distinct_notifications"]
        assert after["outbox"] == after["distinct_outbox"]
        # Exactly what one scan would have raised: every rung passed by now, once.
        assert after["reminders"] == expected > previous["reminders"]
        # One recipient per reminder told (the coordinator), one email each; nothing unrouted.
        assert after["notifications"] == after["outbox"] == after["told"] == expected_reminders(core, now, told=True)
        assert after["reminders_without_notification"] == 0
        # What the processes say they raised adds up to what was written in this round.
        raised = [r[1] for r in results]
        assert sum(raised) == after["reminders"] - previous["reminders"]
        assert sum(r[2] for r in results) == after["notifications"] - previous["notifications"]
        assert sum(r[3] for r in results) == after["outbox"] - previous["outbox"]
        assert all(r[4] == 0 for r in results)
        print(f"[{core.engine.dialect.name}] scan at {now:%Y-%m-%d}: expected {expected}, in database "
              f"{after['reminders']}, raised per process {raised}, steps seen per process {[r[0] for r in results]}")
        previous = after

    # A further pair of scans at the last moment raises nothing more.
    results = scan_at_once(core, ROUNDS[-1])
    assert [r[1] for r in results] == [0, 0] and counts(core) == previous


@pytest.mark.parametrize("core", ["sqlite"], indirect=True)
def test_the_scheduler_process_scans_on_its_interval_and_stops_cleanly_on_sigterm(core: Forlop) -> None:
    add_user(core, "k1")  # inbox only: nothing to deliver outside
    started = datetime.now(timezone.utc)
    open_case(core, started - timedelta(days=5))
    before = expected_reminders(core, started)
    assert before > 0

    proc = popen_forlop("scheduler", database_url=core.settings.database_url,
                        FORLOP_SCAN_INTERVAL_SECONDS="1", FORLOP_DISPATCH_INTERVAL_SECONDS="1")
    try:
        assert wait_until(lambda: counts(core)["reminders"] > 0 or proc.poll() is not None, timeout=20)
        assert proc.poll() is None, proc.communicate(timeout=5)
        time.sleep(2.5)  # a few more scans on the interval: nothing is raised twice
        assert proc.poll() is None
        seen = counts(core)
        assert seen["reminders"] == seen["distinct_reminders"] and seen["told"] == seen["notifications"]
        assert before <= seen["reminders"] <= expected_reminders(core, datetime.now(timezone.utc))

        proc.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        stdout, stderr = proc.communicate(timeout=60)  # a guard against a hang, not a speed requirement
        took = time.monotonic() - stopped_at
    finally:
        stop_process(proc)
    assert proc.returncode == 0, stderr[-2000:]
    # It finishes a scan that is running, then stops (about a second on a quiet machine: a figure, not a test).
    print(f"scheduler: {seen['reminders']} reminders raised, stopped {took:.1f}s after SIGTERM")
    assert "Traceback" not in stderr + stdout and "error" not in stderr.lower(), stderr[-2000:]
    assert "scheduler: scan every 1s" in stderr
