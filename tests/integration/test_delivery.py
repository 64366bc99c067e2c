"""Delivery end to end: the scan's outbox rows reach a real SMTP server and a real webhook receiver on 127.0.0.1,
with retries, dead letters, re-queueing, and no loss when the dispatcher is killed in the middle of a send.

Time is under the tests' control: every scan and dispatch gets ``now`` explicitly (``--now`` for processes).
Only synthetic data: a made-up person record, example.invalid addresses, made-up secrets.
"""

from __future__ import annotations

import email
import email.policy
import os
import signal
import uuid
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

from notifications.channels import EmailChannel, WebhookChannel, message_id_for, verify_signature
from notifications.channels.webhook import PAYLOAD_FIELDS
from notifications.dispatcher import RetryPolicy
from pathway import services
from pathway.bootstrap import Forlop
from pathway.people import PersonRecord
from pathway.scheduler import run_digest, run_scan
from pathway.store.outbox import dispatch, list_outbox, retry_dead
from pathway.store.tables import outbox_t

from .support import (
    HOST,
    WEBHOOK_SECRET,
    add_user,
    expected_reminders,
    open_case,
    popen_forlop,
    run_forlop,
    smtp_server,
    stop_process,
    webhook_receiver,
)

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)  # Monday 09:00 in Oslo
DUE_SOON = T0 + timedelta(hours=18)  # K1 and K2 reach their "due soon" rung (see test_scan)
POLICY = RetryPolicy(max_attempts=3, base_delay=timedelta(seconds=10))
SENDER = "forlop@example.invalid"

PERSON = PersonRecord(
    name="Synnøve Testdatter",
    birth_date=date(1990, 2, 3),
    safe_contact="+47 400 12 345 (kun SMS)",
    address="Skjultveien 13, Postnr Hemmeligby",
    address_protection="code6",
    interpreter_language="tigrinja",
)
# Nothing of the person may show up in a message, a webhook body, a payload or an error.
# Only tokens that cannot turn up by chance in a UUID, a Message-ID or a Date header (a bare 4-digit postcode can).
PERSONAL = ("Synnøve", "Testdatter", "Skjultveien", "Hemmeligby", "400 12 345", "40012345", "1990-02-03", "03.02.1990",
            "tigrinja", "code6")


def assert_impersonal(text: str) -> None:
    found = [p for p in PERSONAL if p.lower() in text.lower()]
    assert not found, f"personal data in a notification: {found}"


def outbox_rows(core: Forlop) -> list[sa.Row]:
    with core.engine.connect() as conn:
        return conn.execute(sa.select(outbox_t).order_by(outbox_t.c.id)).all()


def case_link(core: Forlop, ref: str) -> str:
    return f"{core.settings.public_url.rstrip('/')}/cases/{ref}"


# -- 1. email ---------------------------------------------------------------------------------------------


def test_email_reaches_a_real_smtp_server_in_the_users_language_and_says_nothing_personal(core: Forlop) -> None:
    add_user(core, "k1", email="k1@example.invalid")  # language nb (the default)
    add_user(core, "k2", email="k2@example.invalid", language="en")
    ref = open_case(core, T0, person=PERSON)
    scanned = run_scan(core, now=DUE_SOON)
    assert scanned.reminders == 2 and scanned.outbox == 4  # K1, K2 due soon → both coordinators, by email
    rows = outbox_rows(core)
    assert {r.channel for r in rows} == {"email"} and all(r.status == "pending" for r in rows)
    for r in rows:
        assert_impersonal(repr(r.payload))

    with smtp_server() as (sink, port):
        channel = EmailChannel(host=HOST, port=port, sender=SENDER, starttls=False, timeout=10)
        result = dispatch(engine=core.engine, email=channel, webhook=None, now=DUE_SOON, policy=POLICY)
        assert (result.sent, result.retried, result.dead, result.errors) == (4, 0, 0, [])
        mails = sink.snapshot()
        assert len(mails) == 4

        by_key = {}
        for mail in mails:
            msg = email.message_from_bytes(mail.content, policy=email.policy.default)
            key = str(msg["X-Forlop-Idempotency-Key"])
            by_key[key] = (mail, msg)
            assert str(msg["Message-ID"]) == message_id_for(key)
            assert mail.sender == SENDER and len(mail.recipients) == 1 and str(msg["To"]) == mail.recipients[0]
            subject = str(msg["Subject"])
            text = msg.get_body(preferencelist=("plain",)).get_content()
            html = msg.get_body(preferencelist=("html",)).get_content()
            if mail.recipients == ["k1@example.invalid"]:
                assert subject == "Et steg i Forløp har frist snart"
                assert "Sak: " + ref in text and "Åpne saken i Forløp: " + case_link(core, ref) in text
                assert "Av personvernhensyn" in text and 'lang="nb"' in html
            else:
                assert mail.recipients == ["k2@example.invalid"]
                assert subject == "A step in Forløp is due soon"
                assert "Case: " + ref in text and "Open the case in Forløp: " + case_link(core, ref) in text
                assert "no personal information" in text and 'lang="en"' in html
            assert ref in html and case_link(core, ref) in html
            assert_impersonal(" ".join((subject, text, html, mail.content.decode("ascii", "replace"))))
        # One message per outbox row, keyed by the outbox id.
        assert set(by_key) == {str(r.id) for r in rows}
        for r in rows:
            mail, _ = by_key[str(r.id)]
            assert mail.recipients == [f"{r.username}@example.invalid"]

        sent = outbox_rows(core)
        assert all(r.status == "sent" and r.attempts == 1 and r.sent_at == DUE_SOON and r.last_error is None
                   and r.locked_until is None for r in sent)
        # Dispatching again (now, and much later) sends nothing more.
        for later in (DUE_SOON, DUE_SOON + timedelta(days=1)):
            again = dispatch(engine=core.engine, email=channel, webhook=None, now=later, policy=POLICY)
            assert (again.sent, again.retried, again.dead) == (0, 0, 0)
        assert len(sink.snapshot()) == 4


# -- 2. webhooks --------------------------------------------------------------------------------------------


def test_webhooks_reach_a_real_receiver_signed_keyed_by_the_outbox_id_and_impersonal(core: Forlop) -> None:
    with webhook_receiver() as receiver:
        add_user(core, "k1", webhook_url=receiver.url)
        ref = open_case(core, T0, person=PERSON)
        assert run_scan(core, now=DUE_SOON).outbox == 2
        channel = WebhookChannel(secret=WEBHOOK_SECRET, timeout=10)
        result = dispatch(engine=core.engine, email=None, webhook=channel, now=DUE_SOON, policy=POLICY)
        assert (result.sent, result.retried, result.dead) == (2, 0, 0)
        requests = receiver.snapshot()
        rows = outbox_rows(core)

        assert len(requests) == 2
        assert sorted(r.key for r in requests) == sorted(str(r.id) for r in rows)
        for req in requests:
            assert req.path == "/hook"
            assert req.headers["content-type"] == "application/json"
            assert verify_signature(WEBHOOK_SECRET, req.body, req.headers["x-forlop-signature"])
            assert not verify_signature("another-secret", req.body, req.headers["x-forlop-signature"])
            assert not verify_signature(WEBHOOK_SECRET, req.body + b" ", req.headers["x-forlop-signature"])
            body = req.json()
            assert tuple(body) == PAYLOAD_FIELDS
            assert body["id"] == req.key
            assert body["case_reference"] == ref and body["link"] == case_link(core, ref)
            assert body["kind"] == "due_soon" and body["step"] in ("K1", "K2") and body["count"] == 1
            assert_impersonal(req.body.decode("ascii") + " " + repr(req.headers))
        assert {r.status for r in rows} == {"sent"}

        again = dispatch(engine=core.engine, email=None, webhook=channel, now=DUE_SOON + timedelta(hours=1),
                         policy=POLICY)
        assert again.sent == 0 and len(receiver.snapshot()) == 2


# -- 3. retries, dead letters, re-queueing ------------------------------------------------------------------


def test_a_failing_endpoint_goes_dead_after_the_configured_attempts_and_retry_queues_it_again(core: Forlop) -> None:
    url = core.settings.database_url
    with webhook_receiver(status=500) as receiver:
        add_user(core, "k1", webhook_url=receiver.url)
        ref = open_case(core, T0, person=PERSON)
        assert run_scan(core, now=DUE_SOON).outbox == 2
        ids = {str(r.id) for r in outbox_rows(core)}
        channel = WebhookChannel(secret=WEBHOOK_SECRET, timeout=10)

        def go(at: datetime) -> tuple[int, int, int]:
            r = dispatch(engine=core.engine, email=None, webhook=channel, now=at, policy=POLICY)
            return r.sent, r.retried, r.dead

        t = DUE_SOON
        assert go(t) == (0, 2, 0)
        assert {(r.status, r.attempts, r.next_attempt_at) for r in outbox_rows(core)} == {
            ("pending", 1, t + timedelta(seconds=10))}
        assert go(t + timedelta(seconds=9)) == (0, 0, 0)  # the backoff is respected
        assert go(t + timedelta(seconds=10)) == (0, 2, 0)
        assert {(r.status, r.attempts, r.next_attempt_at) for r in outbox_rows(core)} == {
            ("pending", 2, t + timedelta(seconds=30))}  # doubled: 10 s, then 20 s
        assert go(t + timedelta(seconds=29)) == (0, 0, 0)
        assert go(t + timedelta(seconds=30)) == (0, 0, 2)  # third attempt: dead
        assert go(t + timedelta(days=2)) == (0, 0, 0)  # dead letters are not retried on their own

        assert Counter(receiver.keys()) == {k: 3 for k in ids}
        rows = outbox_rows(core)
        assert {(r.status, r.attempts, r.last_error) for r in rows} == {
            ("dead", 3, "webhook: receiver answered HTTP 500")}
        for r in rows:  # the error names the failure, not the content or the address
            assert ref not in r.last_error and "http://" not in r.last_error and "/cases/" not in r.last_error
            assert_impersonal(r.last_error)
        dead = list_outbox(engine=core.engine, status="dead")
        assert {str(r.id) for r in dead} == ids and {r.attempts for r in dead} == {3}
        assert list_outbox(engine=core.engine, status="pending") == []

        listed = run_forlop("outbox", "list", database_url=url)
        assert listed.returncode == 0, listed.stderr
        assert all(i in listed.stdout for i in ids) and "dead" in listed.stdout
        assert ref not in listed.stdout

        receiver.status = 200  # the endpoint is healthy again
        first, *others = sorted(ids)
        t2 = t + timedelta(hours=1)
        assert retry_dead(engine=core.engine, now=t2, ids=[uuid.UUID(first)]) == 1
        assert go(t2) == (1, 0, 0)

        # The command line queues every remaining dead letter (as of the wall clock: it has no --now).
        queued = run_forlop("outbox", "retry", database_url=url)
        assert queued.returncode == 0, queued.stderr
        assert f"{len(others)} message{'' if len(others) == 1 else 's'} queued again" in queued.stdout
        pending = [r for r in outbox_rows(core) if r.status == "pending"]
        assert {str(r.id) for r in pending} == set(others)
        assert all(r.attempts == 0 and r.last_error is None for r in pending)
        ready = max(r.next_attempt_at for r in pending)
        assert abs(ready - datetime.now(timezone.utc)) < timedelta(minutes=5)
        assert go(ready) == (len(others), 0, 0)

        rows = outbox_rows(core)
        assert {(r.status, r.attempts, r.last_error) for r in rows} == {("sent", 1, None)}
        assert Counter(receiver.keys()) == {k: 4 for k in ids}  # 3 failures, then delivered once
        answered = {}
        for req in receiver.snapshot():
            answered.setdefault(req.key, []).append(req.answered)
        assert all(statuses == [500, 500, 500, 200] for statuses in answered.values())


# -- 4. a permanent failure -------------------------------------------------------------------------------


def test_a_permanent_failure_goes_dead_at_once(core: Forlop) -> None:
    with webhook_receiver(status=400) as receiver:
        add_user(core, "k1", webhook_url=receiver.url)
        open_case(core, T0)
        assert run_scan(core, now=DUE_SOON).outbox == 2
        channel = WebhookChannel(secret=WEBHOOK_SECRET, timeout=10)
        result = dispatch(engine=core.engine, email=None, webhook=channel, now=DUE_SOON, policy=POLICY)
        assert (result.sent, result.retried, result.dead) == (0, 0, 2)
        rows = outbox_rows(core)
        assert {(r.status, r.attempts, r.last_error) for r in rows} == {
            ("dead", 1, "webhook: receiver answered HTTP 400")}
        assert len(receiver.keys()) == 2
        later = dispatch(engine=core.engine, email=None, webhook=channel, now=DUE_SOON + timedelta(days=1),
                         policy=POLICY)
        assert (later.sent, later.retried, later.dead) == (0, 0, 0) and len(receiver.keys()) == 2
        assert {str(r.id) for r in list_outbox(engine=core.engine, status="dead")} == {str(r.id) for r in rows}


# -- 5. a dispatcher killed in the middle of a send -----------------------------------------------------------


def test_a_dispatcher_killed_mid_send_loses_nothing_and_resends_only_the_message_in_flight(core: Forlop) -> None:
    url = core.settings.database_url
    lease = RetryPolicy().lease
    t1 = T0 + timedelta(days=3)
    with webhook_receiver(hang_first=120) as receiver:
        add_user(core, "k1", webhook_url=receiver.url)
        open_case(core, T0)
        open_case(core, T0 + timedelta(hours=1))
        # No rung falls between the first run and the restarts: every message exists before the kill.
        assert expected_reminders(core, t1) == expected_reminders(core, t1 + lease + timedelta(minutes=1))

        proc = popen_forlop("scan", "--now", t1.isoformat(), database_url=url, FORLOP_WEBHOOK_TIMEOUT_SECONDS="60")
        try:
            assert receiver.first_arrived.wait(60), "the dispatcher never sent its first webhook"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            stop_process(proc)
        assert proc.returncode == -signal.SIGKILL
        in_flight = receiver.keys()
        assert len(in_flight) == 1

        rows = outbox_rows(core)
        ids = {str(r.id) for r in rows}
        assert len(ids) == expected_reminders(core, t1, told=True) >= 10  # one webhook per reminder told, for k1
        assert in_flight[0] in ids
        # The first batch (20) was claimed under a lease before the first send; the rest wait; nothing was sent.
        states = [(r.status, r.attempts, r.locked_until) for r in rows]
        assert states.count(("sending", 1, t1 + lease)) == min(20, len(rows))
        assert set(states) <= {("sending", 1, t1 + lease), ("pending", 0, None)}

        # While the lease runs, a restarted dispatcher leaves the claimed messages alone (it sends the others).
        waiting = {str(r.id) for r in rows if r.status == "pending"}
        early = run_forlop("scan", "--now", (t1 + lease - timedelta(minutes=1)).isoformat(), database_url=url)
        assert early.returncode == 0, early.stderr
        assert f"outbox: {len(waiting)} sent" in early.stdout
        assert sorted(receiver.keys()) == sorted(in_flight + list(waiting))

        # After the lease, the restart delivers the claimed messages, the one in flight again with the same key.
        late = run_forlop("scan", "--now", (t1 + lease + timedelta(minutes=1)).isoformat(), database_url=url)
        assert late.returncode == 0, late.stderr
        assert f"outbox: {len(ids) - len(waiting)} sent, 0 to retry, 0 dead" in late.stdout
        assert "Traceback" not in late.stderr + early.stderr

        rows = outbox_rows(core)
        assert {r.status for r in rows} == {"sent"}
        # The claimed batch took two attempts (the crash used one), the others one.
        assert sorted(r.attempts for r in rows) == sorted([1] * len(waiting) + [2] * (len(ids) - len(waiting)))
        received = Counter(receiver.keys())
        assert set(received) == ids  # de-duplicated by key at the receiver: exactly the outbox
        assert {k: n for k, n in received.items() if n > 1} == {in_flight[0]: 2}
        assert sum(received.values()) == len(ids) + 1


# -- 6. one bad message does not stall the outbox ---------------------------------------------------------------


def test_a_unit_name_with_a_space_neither_breaks_the_managers_digest_nor_stalls_the_outbox(core: Forlop) -> None:
    """Units are free text ("Bergen sentrum" is accepted when a case is opened). The manager's digest must name it
    as it is and still link to the report, and a message that cannot be rendered must fail alone, not abort the batch
    and block every later one."""
    unit = "Bergen sentrum"
    add_user(core, "k1", unit=unit, email="k1@example.invalid")
    add_user(core, "m1", "manager", unit=unit, email="m1@example.invalid")
    ref = services.open_case(
        uow=core.uow(), pathway_id="krisesenter", unit=unit, first_contact_at=T0, actor="k1", keys=core.keys,
        index_key=core.settings.index_key, reference_prefix="TST", at=T0).reference
    now = T0 + timedelta(days=3)  # Thursday 09:00 in Oslo: K1 and K2 passed their manager rung on Wednesday
    scanned = run_scan(core, now=now)
    assert scanned.outbox == expected_reminders(core, now, told=True) > 4
    assert run_digest(core, now=now).outbox == 1
    with smtp_server() as (sink, port):
        channel = EmailChannel(host=HOST, port=port, sender=SENDER, starttls=False, timeout=10)
        result = dispatch(engine=core.engine, email=channel, webhook=None, now=now, policy=POLICY)
        assert (result.sent, result.retried, result.dead) == (scanned.outbox + 1, 0, 0)
        assert {r.status for r in outbox_rows(core)} == {"sent"}
        [digest] = [email.message_from_bytes(m.content, policy=email.policy.default) for m in sink.snapshot()
                    if m.recipients == ["m1@example.invalid"]]
    text = digest.get_body(preferencelist=("plain",)).get_content()
    assert f"{core.settings.public_url}/reports" in text and f"ved {unit}:" in text and ref not in text


def test_an_unexpected_error_in_one_message_fails_that_message_only(core: Forlop) -> None:
    """Defence in depth: whatever a channel raises besides DeliveryError, the other messages are still delivered
    and the failing one ends as a dead letter whose error names only the kind of failure."""

    class Flaky:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def send(self, *, url: str, message) -> None:  # type: ignore[no-untyped-def]
            if message.step_code == "K1":
                raise KeyError(f"boom {message.case_reference}")  # an error text that carries content
            self.sent.append(message.idempotency_key)

    add_user(core, "k1", webhook_url="http://127.0.0.1:9/hook")
    ref = open_case(core, T0)
    assert run_scan(core, now=DUE_SOON).outbox == 2
    flaky = Flaky()
    result = dispatch(engine=core.engine, email=None, webhook=flaky, now=DUE_SOON, policy=POLICY)
    assert (result.sent, result.dead) == (1, 1) and len(flaky.sent) == 1
    rows = outbox_rows(core)
    assert sorted(r.status for r in rows) == ["dead", "sent"]
    dead = next(r for r in rows if r.status == "dead")
    assert ref not in dead.last_error and "KeyError" in dead.last_error
