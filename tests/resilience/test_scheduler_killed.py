"""The scheduler process (``forlop scheduler``) killed with SIGKILL while it delivers, then started again; and
stopped with SIGTERM while it delivers.

Deliveries go to a real webhook receiver (slowed down, so that a kill lands mid-send) and a real SMTP server on
127.0.0.1. The scheduler runs on the wall clock: the cases are set weeks in the past, so that many rungs are due at
once and none falls due while the test runs. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

from pathway.bootstrap import Forlop
from pathway.store.tables import outbox_t, reminder_t
from tests.suite import processes
from tests.integration.support import (
    HOST,
    MailSink,
    WebhookReceiver,
    add_user,
    expected_reminders,
    forlop_argv,
    forlop_env,
    open_case,
    smtp_server,
    stop_process,
    wait_until,
    webhook_receiver,
)

from .support import ROOT, say

CASES = 3
KILLS = 3
LEASE_SECONDS = 3  # a message claimed by a killed scheduler is sent again after this (production: 5 minutes)


def received(receiver: WebhookReceiver, sink: MailSink) -> list[str]:
    """The idempotency key of every delivery that arrived, webhooks and emails, duplicates included."""
    keys = [str(k) for k in receiver.keys()]
    for mail in sink.snapshot():
        message = email.message_from_bytes(mail.content, policy=email.policy.default)
        keys.append(str(message["X-Forlop-Idempotency-Key"]))
    return keys


def outbox(core: Forlop) -> Counter[str]:
    with core.engine.connect() as conn:
        return Counter(conn.execute(sa.select(outbox_t.c.status)).scalars())


@contextmanager
def world(core: Forlop) -> Iterator[tuple[WebhookReceiver, MailSink, dict[str, str], int]]:
    """k1 (coordinator: webhook and email) and m1 (manager: email), cases weeks old; the scheduler's environment."""
    with webhook_receiver(delay=0.03) as receiver, smtp_server() as (sink, smtp_port):
        add_user(core, "k1", email="k1@example.invalid", webhook_url=receiver.url)
        add_user(core, "m1", "manager", email="m1@example.invalid")
        now = datetime.now(timezone.utc)
        for i in range(CASES):
            open_case(core, now - timedelta(days=30, hours=5 * i))
        expected = expected_reminders(core, now)
        # No rung falls due while the test runs: the same reminders at the end as at the start.
        assert expected == expected_reminders(core, now + timedelta(minutes=30)) > 0
        env = {"FORLOP_SCAN_INTERVAL_SECONDS": "1", "FORLOP_DISPATCH_INTERVAL_SECONDS": "1",
               "FORLOP_OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS), "FORLOP_SMTP_HOST": HOST,
               "FORLOP_SMTP_PORT": str(smtp_port), "FORLOP_SMTP_STARTTLS": "false",
               "FORLOP_SMTP_SENDER": "forlop@example.invalid"}
        yield receiver, sink, env, expected


def start_scheduler(core: Forlop, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:  # a file, not a pipe nobody reads
        return processes.spawn(forlop_argv("scheduler"), env=forlop_env(core.settings.database_url, **env),
                               stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


def test_killing_the_scheduler_mid_dispatch_loses_no_reminder_and_repeats_at_most_the_one_in_flight(
        core: Forlop, tmp_path: Path) -> None:
    db = core.engine.dialect.name
    log = tmp_path / "scheduler.log"
    with world(core) as (receiver, sink, env, expected):
        kills = []
        for n in range(KILLS):
            before = len(received(receiver, sink))
            proc = start_scheduler(core, env, log)
            try:
                # Kill it once it has delivered a few more (a different number each time, so the kill lands at a
                # different point of a batch), while messages are still waiting.
                wanted = before + 4 + 7 * n
                assert wait_until(lambda: len(received(receiver, sink)) >= wanted or proc.poll() is not None,
                                  timeout=120)
                assert proc.poll() is None, log.read_text()[-3000:]
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            finally:
                stop_process(proc)  # type: ignore[arg-type]
            states = outbox(core)
            kills.append((len(received(receiver, sink)), dict(states)))
            assert states["pending"] + states["sending"] > 0, "everything was delivered before the kill"

        # Started again, it sends the rest; what the killed ones had claimed, once their lease has run out.
        proc = start_scheduler(core, env, log)
        try:
            assert wait_until(lambda: set(outbox(core)) == {"sent"} or proc.poll() is not None, timeout=240)
            assert proc.poll() is None, log.read_text()[-3000:]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=120) == 0
        finally:
            stop_process(proc)  # type: ignore[arg-type]

    with core.engine.connect() as conn:
        reminders = conn.execute(sa.select(sa.func.count()).select_from(reminder_t)).scalar_one()
        ids = {str(i) for i in conn.execute(sa.select(outbox_t.c.id)).scalars()}
    keys = Counter(received(receiver, sink))
    twice = {k: n for k, n in keys.items() if n > 1}
    say(f"[{db}] reminders expected {expected}, raised {reminders}; outbox {len(ids)} ({dict(outbox(core))}); "
        f"delivered {len(set(keys))} distinct, {sum(keys.values())} in all, sent twice {len(twice)} "
        f"(scheduler killed {KILLS} times; deliveries and outbox at each kill: {kills})")
    assert reminders == expected  # none lost, none raised twice (the scan's unique key)
    assert set(outbox(core)) == {"sent"}
    assert set(keys) == ids  # every outbox row arrived, and nothing else did
    # Only a message in flight at a kill may arrive twice (at-least-once; the receiver drops it by its key).
    assert len(twice) <= KILLS and set(twice.values()) <= {2}
    assert "Traceback" not in log.read_text()


def test_sigterm_lets_the_scheduler_finish_its_delivery_and_leaves_nothing_claimed(core: Forlop,
                                                                                   tmp_path: Path) -> None:
    db = core.engine.dialect.name
    log = tmp_path / "scheduler.log"
    with world(core) as (receiver, sink, env, _):
        proc = start_scheduler(core, env, log)
        try:
            assert wait_until(lambda: len(received(receiver, sink)) >= 3 or proc.poll() is not None, timeout=120)
            at_signal = len(received(receiver, sink))
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=120)
        finally:
            stop_process(proc)  # type: ignore[arg-type]
        after = len(received(receiver, sink))
        states = outbox(core)
    say(f"[{db}] SIGTERM after {at_signal} deliveries: {after - at_signal} more finished before the exit, "
        f"outbox then {dict(states)}")
    assert code == 0, log.read_text()[-3000:]
    # The batch it was sending was finished and marked: nothing is left claimed under a lease.
    assert states["sending"] == 0 and states["sent"] == after == len(set(received(receiver, sink)))
    assert states["pending"] > 0  # the rest waits for the next scheduler, unclaimed
