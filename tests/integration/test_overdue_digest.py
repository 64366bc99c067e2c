"""The managers' daily digest of overdue steps, on SQLite and PostgreSQL: one per unit and working day, the report's
link, never a case; none on a weekend or holiday; none twice, also with two schedulers; the coordinators hear it in a
unit without a manager. By email (through a real SMTP server) and webhook (a real HTTP receiver) only the total, "fewer
than 5" for 1 to 4, and never a checkpoint; the inbox has the counts per checkpoint with the report's small-count rule.

Time is under the test's control: every scan, digest and dispatch gets ``now`` explicitly. Only synthetic data.
"""

from __future__ import annotations

import email
import email.policy
import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from notifications.channels import EmailChannel, WebhookChannel
from pathway import services
from pathway.bootstrap import Forlop
from pathway.calendar import OSLO
from pathway.case.commands import CompleteStep, Pause
from pathway.scheduler import run_digest, run_dispatch, run_scan
from pathway.store import digest as digest_store
from pathway.store.digest import send_overdue_digest
from pathway.store.outbox import dispatch
from pathway.store.tables import digest_t, notification_t, outbox_t

from .support import HOST, UNIT, add_user, open_case, smtp_server, webhook_receiver

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)  # Monday 23 November 2026, 09:00 in Oslo
# Thursday 07:00 in Oslo: K1 and K2 (due Tuesday 09:00) passed their manager rung (one working day later) on
# Wednesday; K3 and K4 (due Wednesday 09:00) are overdue but reach theirs only next Monday.
THURSDAY = datetime(2026, 11, 26, 7, 0, tzinfo=OSLO)
OTHER = "annen-enhet"
K1 = {"nb": "Innledende kartlegging og trusselvurdering", "en": "Initial mapping and threat assessment"}
K2 = {"nb": "Sikkerhetsplan og beslutning om botilbud", "en": "Safety plan and shelter decision"}
CHECKPOINT_CODE = re.compile(r"\bK\d+\b")


def checkpoint_names(core: Forlop) -> set[str]:
    """Every checkpoint's name in both languages, of the pathway the tests' cases are on."""
    definition = core.catalog.latest("krisesenter")
    return {name for c in definition.checkpoints for name in (c.name.nb, c.name.en)}


def change(core: Forlop, ref: str, fn) -> None:  # type: ignore[no-untyped-def]
    services.change_case(uow=core.uow(), reference=ref, expected_version=None, change=fn)


def seventy_eight_overdue_steps(core: Forlop) -> list[str]:
    """42 cases of UNIT, 6 of them with K2 done in time: 42 K1 and 36 K2 past their manager rung on THURSDAY."""
    refs = [open_case(core, T0) for _ in range(42)]
    for ref in refs[:6]:
        change(core, ref, lambda c: c.execute(CompleteStep("K2"), actor="k1", at=T0 + timedelta(hours=5)))
    return refs


def inbox_of(core: Forlop, username: str) -> list[sa.Row]:
    with core.engine.connect() as conn:
        return conn.execute(sa.select(notification_t).where(notification_t.c.username == username)
                            .order_by(notification_t.c.created_at)).all()


def outbox_of(core: Forlop, username: str) -> list[sa.Row]:
    with core.engine.connect() as conn:
        return conn.execute(sa.select(outbox_t).where(outbox_t.c.username == username)
                            .order_by(outbox_t.c.created_at)).all()


def digests(core: Forlop) -> list[sa.Row]:
    with core.engine.connect() as conn:
        return conn.execute(sa.select(notification_t).where(notification_t.c.kind == "overdue_digest")).all()


def test_78_overdue_steps_give_the_unit_one_digest_with_counts_per_checkpoint_and_the_reports_link(
        core: Forlop) -> None:
    add_user(core, "k1", email="k1@example.invalid")
    add_user(core, "m1", "manager", email="m1@example.invalid")
    add_user(core, "m2", "manager", webhook_url="http://127.0.0.1:9/hook")
    refs = seventy_eight_overdue_steps(core)
    scanned = run_scan(core, now=THURSDAY)  # raises every rung passed, the managers' too, but tells them of none
    assert scanned.reminders > 78 and scanned.unrouted == 0
    assert not inbox_of(core, "m1") and not inbox_of(core, "m2")

    made = run_digest(core, now=THURSDAY)
    assert (made.units, made.steps, made.notifications, made.outbox) == (1, 78, 2, 2)
    report = f"{core.settings.public_url.rstrip('/')}/reports"
    for manager in ("m1", "m2"):
        [row] = inbox_of(core, manager)
        assert (row.kind, row.case_reference, row.step_code, row.unit, row.link) == (
            "overdue_digest", None, None, UNIT, report)
    assert not [r for r in inbox_of(core, "k1") if r.kind == "overdue_digest"]  # the unit has managers
    [mail] = outbox_of(core, "m1")
    [hook] = outbox_of(core, "m2")
    assert (mail.channel, hook.channel) == ("email", "webhook") and mail.payload == hook.payload
    payload = mail.payload
    assert (payload["kind"], payload["count"], payload["link"], payload["case_reference"], payload["unit"]) == (
        "overdue_digest", 78, report, None, UNIT)
    assert "checkpoints" not in payload and not CHECKPOINT_CODE.search(repr(payload))
    assert not [name for name in checkpoint_names(core) if name in repr(payload)]
    assert not any(ref in repr(payload) for ref in refs)
    # the inbox, read signed in, has the counts per checkpoint: both 5 or more, so both named and counted
    assert inbox_of(core, "m1")[0].digest == {"total": 78, "lines": [
        {"code": "K1", "names": K1, "count": 42, "other": False},
        {"code": "K2", "names": K2, "count": 36, "other": False}]}
    with core.engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(sa.select(digest_t))] == [
            (THURSDAY.date(), THURSDAY.astimezone(timezone.utc), 1, 78)]


def test_a_second_scan_the_same_day_sends_none_and_the_next_working_day_sends_the_next(core: Forlop) -> None:
    add_user(core, "k1")
    add_user(core, "m1", "manager", email="m1@example.invalid")
    seventy_eight_overdue_steps(core)
    assert run_digest(core, now=THURSDAY).units == 1
    for later in (THURSDAY, THURSDAY + timedelta(minutes=1), THURSDAY + timedelta(hours=16, minutes=59)):
        assert run_digest(core, now=later).units == 0  # also a restarted scheduler: the day is in the database
    assert len(digests(core)) == 1 and len(outbox_of(core, "m1")) == 1

    friday = THURSDAY + timedelta(days=1)
    again = run_digest(core, now=friday)  # still overdue, so told again: the next day's digest
    assert (again.units, again.steps) == (1, 78)
    assert len(digests(core)) == 2 and len(outbox_of(core, "m1")) == 2


def test_two_schedulers_at_the_same_moment_make_one_digest(core: Forlop) -> None:
    add_user(core, "k1")
    add_user(core, "m1", "manager", email="m1@example.invalid")
    seventy_eight_overdue_steps(core)
    start = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def scheduler() -> None:
        try:
            start.wait(timeout=30)
            results.append(send_overdue_digest(engine=core.engine, resolve=core.catalog.resolve,
                                               public_url=core.settings.public_url, now=THURSDAY,
                                               at=core.settings.manager_digest_at).units)
        except BaseException as exc:  # noqa: BLE001 - reported below, with the thread's result
            errors.append(exc)

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and sorted(results) == [0, 1]
    assert len(inbox_of(core, "m1")) == 1 and len(outbox_of(core, "m1")) == 1


def test_a_scheduler_that_fails_while_writing_the_digest_leaves_the_day_to_the_next_scan(
        core: Forlop, monkeypatch: pytest.MonkeyPatch) -> None:
    add_user(core, "k1")
    add_user(core, "m1", "manager", email="m1@example.invalid")
    seventy_eight_overdue_steps(core)
    written = digest_store.write_notices

    def crash(*args: object, **kwargs: object) -> None:
        written(*args, **kwargs)  # type: ignore[arg-type]
        raise RuntimeError("the process died here")

    monkeypatch.setattr(digest_store, "write_notices", crash)
    with pytest.raises(RuntimeError):
        run_digest(core, now=THURSDAY)
    with core.engine.connect() as conn:  # nothing of it was committed: not the day, not a message
        assert conn.execute(sa.select(sa.func.count()).select_from(digest_t)).scalar_one() == 0
    assert not inbox_of(core, "m1") and not outbox_of(core, "m1")
    monkeypatch.setattr(digest_store, "write_notices", written)
    assert run_digest(core, now=THURSDAY + timedelta(minutes=1)).steps == 78
    assert len(inbox_of(core, "m1")) == len(outbox_of(core, "m1")) == 1


def test_no_digest_before_the_hour_on_a_weekend_or_on_a_holiday_and_the_next_working_day_covers_them(
        core: Forlop) -> None:
    add_user(core, "k1")
    add_user(core, "m1", "manager")
    seventy_eight_overdue_steps(core)
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=OSLO)
    christmas = datetime(2026, 12, 25, 10, 0, tzinfo=OSLO)  # Friday, første juledag
    boxing_day = datetime(2026, 12, 26, 10, 0, tzinfo=OSLO)  # Saturday, andre juledag
    for moment in (THURSDAY - timedelta(minutes=1), saturday, saturday + timedelta(days=1), christmas, boxing_day):
        assert run_digest(core, now=moment).units == 0
    with core.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(digest_t)).scalar_one() == 0
    assert not digests(core)
    monday = datetime(2026, 11, 30, 7, 0, tzinfo=OSLO)  # K3 and K4 reached their manager rung at 09:00: not yet
    assert (run_digest(core, now=monday).steps, run_digest(core, now=monday + timedelta(hours=2)).steps) == (78, 0)
    assert len(digests(core)) == 1


def test_a_day_without_escalated_steps_sends_nothing_and_paused_or_finished_steps_are_not_counted(
        core: Forlop) -> None:
    add_user(core, "k1")
    add_user(core, "m1", "manager")
    refs = [open_case(core, T0) for _ in range(3)]
    wednesday = datetime(2026, 11, 25, 7, 0, tzinfo=OSLO)  # K1 and K2 are overdue, but reach the manager at 09:00
    assert run_digest(core, now=wednesday).units == 0 and not digests(core)
    change(core, refs[0], lambda c: c.execute(Pause(reason="på sykehus"), actor="k1", at=T0 + timedelta(hours=1)))
    change(core, refs[1], lambda c: c.execute(CompleteStep("K1", note="kom ikke fram"), actor="k1",
                                                                 at=T0 + timedelta(days=2)))
    made = run_digest(core, now=THURSDAY)
    assert (made.units, made.steps) == (1, 3)  # refs[1]'s K2, refs[2]'s K1 and K2


def test_a_unit_without_a_manager_tells_its_coordinators_and_each_unit_hears_only_of_its_own(core: Forlop) -> None:
    add_user(core, "k1")
    add_user(core, "m1", "manager")
    add_user(core, "k2", unit=OTHER, email="k2@example.invalid")
    add_user(core, "k3", unit=OTHER)
    seventy_eight_overdue_steps(core)
    services.open_case(uow=core.uow(), pathway_id="krisesenter", unit=OTHER, first_contact_at=T0, actor="k2",
                       keys=core.keys, index_key=core.settings.index_key, reference_prefix="TST", at=T0)
    made = run_digest(core, now=THURSDAY)
    assert (made.units, made.steps, made.notifications) == (2, 80, 3)
    assert [(r.unit, r.kind) for r in inbox_of(core, "m1")] == [(UNIT, "overdue_digest")]
    for coordinator in ("k2", "k3"):
        assert [(r.unit, r.kind) for r in inbox_of(core, coordinator)] == [(OTHER, "overdue_digest")]
    [mail] = outbox_of(core, "k2")
    # two steps (K1 and K2, one each): "fewer than 5" by email, and in the inbox one line that names no checkpoint
    assert mail.payload["count"] is None and "checkpoints" not in mail.payload
    assert inbox_of(core, "k2")[0].digest == {"total": None, "lines": [
        {"code": None, "names": {}, "count": None, "other": True}]}
    assert not inbox_of(core, "k1")  # UNIT has a manager


def test_the_digest_reaches_a_real_smtp_server_in_each_managers_language_without_any_case(core: Forlop) -> None:
    add_user(core, "k1")
    add_user(core, "m1", "manager", email="m1@example.invalid")
    add_user(core, "m2", "manager", email="m2@example.invalid", language="en")
    refs = seventy_eight_overdue_steps(core)
    run_scan(core, now=THURSDAY)
    run_digest(core, now=THURSDAY)
    report = f"{core.settings.public_url.rstrip('/')}/reports"
    with smtp_server() as (sink, port):
        core.email_channel = EmailChannel(host=HOST, port=port, sender="forlop@example.invalid", starttls=False,
                                          timeout=10)
        sent = run_dispatch(core, now=THURSDAY)
        assert (sent.sent, sent.retried, sent.dead) == (2, 0, 0)
        mails = {m.recipients[0]: email.message_from_bytes(m.content, policy=email.policy.default)
                 for m in sink.snapshot()}
    assert set(mails) == {"m1@example.invalid", "m2@example.invalid"}
    texts = {}
    for address, msg in mails.items():
        text = msg.get_body(preferencelist=("plain",)).get_content()
        html = msg.get_body(preferencelist=("html",)).get_content()
        texts[address] = (str(msg["Subject"]), text)
        assert report in text and f'href="{report}"' in html
        everything = " ".join((str(msg["Subject"]), text, html))
        assert not any(ref in everything for ref in refs) and "TST-" not in everything
    subject, text = texts["m1@example.invalid"]
    assert subject == "Daglig oversikt: 78 forsinkede steg i Forløp"
    assert "ved testenhet: 78 steg har passert fristen" in text  # a unit without a display name: its code
    subject, text = texts["m2@example.invalid"]
    assert subject == "Daily overview: 78 overdue steps in Forløp"
    assert "in testenhet: 78 steps are past their due date" in text
    names = checkpoint_names(core)
    for msg in mails.values():
        everything = " ".join((str(msg["Subject"]), msg.get_body(preferencelist=("plain",)).get_content(),
                               msg.get_body(preferencelist=("html",)).get_content()))
        assert not CHECKPOINT_CODE.search(everything) and not [name for name in names if name in everything]
        assert "42" not in everything and "36" not in everything  # no count per checkpoint either


def test_a_unit_with_fewer_than_5_overdue_steps_is_told_so_by_email_and_webhook_with_its_name_and_no_checkpoint(
        core: Forlop, monkeypatch: pytest.MonkeyPatch) -> None:
    """The privacy review's case: K1 and K2 of one case (1 each). Neither the number nor the checkpoints reach the
    unsafe channels; the unit's display name (FORLOP_UNIT_NAMES) does."""
    monkeypatch.setitem(core.settings.unit_names, UNIT, "Testenheten sentrum")
    with smtp_server() as (sink, port), webhook_receiver() as receiver:
        add_user(core, "k1")
        add_user(core, "m1", "manager", email="m1@example.invalid")
        add_user(core, "m2", "manager", email="m2@example.invalid", language="en")
        add_user(core, "m3", "manager", webhook_url=receiver.url)
        refs = [open_case(core, T0)]
        made = run_digest(core, now=THURSDAY)
        assert (made.units, made.steps, made.outbox) == (1, 2, 3)
        core.email_channel = EmailChannel(host=HOST, port=port, sender="forlop@example.invalid", starttls=False,
                                          timeout=10)
        core.webhook_channel = WebhookChannel(secret="s" * 32, timeout=10)
        sent = run_dispatch(core, now=THURSDAY)
        assert (sent.sent, sent.retried, sent.dead) == (3, 0, 0)
        mails = [email.message_from_bytes(m.content, policy=email.policy.default) for m in sink.snapshot()]
        [hook] = receiver.snapshot()
    names = checkpoint_names(core)
    subjects = sorted(str(m["Subject"]) for m in mails)
    assert subjects == ["Daglig oversikt: færre enn 5 forsinkede steg i Forløp",
                        "Daily overview: fewer than 5 overdue steps in Forløp"]
    for msg in mails:
        text = msg.get_body(preferencelist=("plain",)).get_content()
        html = msg.get_body(preferencelist=("html",)).get_content()
        everything = " ".join((str(msg["Subject"]), text, html))
        assert "Testenheten sentrum" in text and "Testenheten sentrum" in html
        assert "færre enn 5" in text or "fewer than 5" in text
        assert not CHECKPOINT_CODE.search(everything) and not [name for name in names if name in everything]
        assert not re.search(r"(?<![\d.:])[1-4](?![\d.:])", everything.replace("fewer than 5", "")
                             .replace("færre enn 5", "")), "a count from 1 to 4"
        assert not any(ref in everything for ref in refs)
    body = hook.json()
    assert (body["kind"], body["count"], body["unit"], body["case_reference"], body["step"]) == (
        "overdue_digest", None, UNIT, None, None)
    assert not CHECKPOINT_CODE.search(hook.body.decode()) and not [n for n in names if n in hook.body.decode()]
    # the inbox: the same two steps, one line that names no checkpoint, "fewer than 5"
    for manager in ("m1", "m2", "m3"):
        assert [r.digest for r in inbox_of(core, manager)] == [
            {"total": None, "lines": [{"code": None, "names": {}, "count": None, "other": True}]}]
