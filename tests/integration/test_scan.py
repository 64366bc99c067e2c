"""The reminder scan against SQLite and PostgreSQL: right moments, once each, paused cases silent, inbox."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from pathway.case.commands import (
    Advance,
    AssignCoordinator,
    CompleteStep,
    CreateHandover,
    Pause,
    RecordConsent,
    Resume,
    UpdateHandover,
)
from pathway import services
from pathway.bootstrap import Forlop
from pathway.scheduler import run_digest, run_scan
from pathway.store import inbox
from pathway.store.tables import notification_t, outbox_t, reminder_t, step_t

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)  # Monday 09:00 in Oslo
UNIT = "testenhet"


@pytest.fixture
def staffed(core: Forlop) -> Forlop:
    add = lambda name, role, **kw: services.add_user(engine=core.engine, username=name, role=role, **kw)  # noqa: E731
    add("k1", "coordinator", unit=UNIT, email="k1@example.invalid")
    add("k2", "coordinator", unit="annen-enhet")
    add("m1", "manager", unit=UNIT)
    add("p1", "partner", agency="police", webhook_url="http://127.0.0.1:9/hook")
    add("n1", "partner", agency="nav")
    return core


def open_case(core: Forlop, **kw: object) -> str:
    return services.open_case(
        uow=core.uow(), pathway_id="krisesenter", unit=UNIT, first_contact_at=T0, actor="k1", keys=core.keys,
        index_key=core.settings.index_key, reference_prefix="TST", at=T0, **kw).reference


def change(core: Forlop, ref: str, fn) -> None:  # type: ignore[no-untyped-def]
    services.change_case(uow=core.uow(), reference=ref, expected_version=None, change=fn)


def raised(core: Forlop) -> list[tuple[str, str]]:
    """(step code, rung kind) of every reminder raised so far."""
    with core.engine.connect() as conn:
        rows = conn.execute(sa.select(step_t.c.code, reminder_t.c.kind).join(step_t, step_t.c.id == reminder_t.c.step_id)
                            .order_by(step_t.c.code, reminder_t.c.rung))
        return [tuple(r) for r in rows]


def test_nothing_is_raised_before_the_first_rung_and_each_rung_once_after(staffed: Forlop) -> None:
    open_case(staffed)
    assert run_scan(staffed, now=T0 + timedelta(hours=17, minutes=59)).reminders == 0
    first = run_scan(staffed, now=T0 + timedelta(hours=18))  # K1 and K2 are due in 6 hours
    assert first.reminders == 2 and sorted(raised(staffed)) == [("K1", "due_soon"), ("K2", "due_soon")]
    assert run_scan(staffed, now=T0 + timedelta(hours=18)).reminders == 0
    assert run_scan(staffed, now=T0 + timedelta(hours=19)).reminders == 0


def test_after_downtime_the_first_scan_raises_every_passed_rung_once(staffed: Forlop) -> None:
    open_case(staffed)
    result = run_scan(staffed, now=T0 + timedelta(days=30))
    # K1, K2 (urgent ladder), K3, K4 (default): all four rungs each. K12 (due after 28 days):
    # due soon, due now and the coordinator's escalation one working day later; the manager's is still ahead.
    expected = {(code, kind) for code in ("K1", "K2", "K3", "K4")
                for kind in ("due_soon", "due_now", "escalation", "manager_escalation")}
    expected |= {("K12", "due_soon"), ("K12", "due_now"), ("K12", "escalation")}
    assert result.reminders == len(expected) == 19
    assert set(raised(staffed)) == expected and len(raised(staffed)) == 19
    assert run_scan(staffed, now=T0 + timedelta(days=30)).reminders == 0
    assert run_scan(staffed, now=T0 + timedelta(days=32)).reminders == 1  # K12's manager rung


def test_recipients_are_the_owner_the_coordinator_and_the_units_manager(staffed: Forlop) -> None:
    ref = open_case(staffed)
    change(staffed, ref, lambda c: c.execute(AssignCoordinator("k1"), actor="m1", at=T0 + timedelta(minutes=5)))
    run_scan(staffed, now=T0 + timedelta(days=3))
    with staffed.engine.connect() as conn:
        rows = conn.execute(sa.select(notification_t.c.username, notification_t.c.kind, notification_t.c.step_code,
                                      notification_t.c.case_reference)).all()
    by_user = {u: {(k, s) for uu, k, s, _ in rows if uu == u} for u in ("k1", "k2", "m1", "p1", "n1")}
    assert ("due_soon", "K1") in by_user["k1"]  # owner crisis centre → the unit's coordinators
    assert ("escalation", "K1") in by_user["k1"]
    assert not by_user["m1"]  # K1's manager rung was passed, but managers hear of it in the daily digest
    assert not by_user["k2"] and not by_user["p1"] and not by_user["n1"]  # another unit, other agencies
    assert all(ref_ == ref for *_, ref_ in rows)


def test_a_paused_case_raises_nothing_and_resuming_starts_the_ladder_from_the_moved_deadline(staffed: Forlop) -> None:
    ref = open_case(staffed)
    change(staffed, ref, lambda c: c.execute(Pause(reason="på sykehus"), actor="k1", at=T0 + timedelta(hours=1)))
    assert run_scan(staffed, now=T0 + timedelta(days=10)).reminders == 0
    change(staffed, ref, lambda c: c.execute(Resume(), actor="k1", at=T0 + timedelta(days=10)))
    # The clock stood still for 10 days less an hour: K1 is now due 10 days 23 hours after first contact.
    resumed = T0 + timedelta(days=10)
    assert run_scan(staffed, now=resumed + timedelta(hours=16, minutes=59)).reminders == 0
    assert {k for _, k in raised(staffed)} == set()
    run_scan(staffed, now=resumed + timedelta(hours=17))
    assert sorted(raised(staffed)) == [("K1", "due_soon"), ("K2", "due_soon")]


def test_a_handover_nobody_accepted_escalates_to_the_coordinator_and_an_accepted_one_does_not(staffed: Forlop) -> None:
    refs = [open_case(staffed) for _ in range(2)]
    for ref in refs:
        change(staffed, ref, lambda c: c.execute(RecordConsent("police", scope=["name", "contact", "threat_assessment"], given=True), actor="k1", at=T0 + timedelta(hours=1)))
        change(staffed, ref, lambda c: c.execute(CreateHandover("K6"), actor="k1", at=T0 + timedelta(hours=2)))
    change(staffed, refs[1], lambda c: c.execute(UpdateHandover(c.handovers[0].id, "accepted"), actor="p1", at=T0 + timedelta(hours=3)))
    run_scan(staffed, now=T0 + timedelta(days=1, hours=2))  # K6 was due one working day after consent
    with staffed.engine.connect() as conn:
        rows = conn.execute(sa.select(notification_t.c.case_reference, notification_t.c.username, notification_t.c.kind)
                            .where(notification_t.c.step_code == "K6")).all()
    assert (refs[0], "k1", "handover_unaccepted") in rows
    assert not any(r == refs[1] and k == "handover_unaccepted" for r, _, k in rows)
    assert {(r, k) for r, u, k in rows if u == "p1"} == {(refs[0], "due_soon"), (refs[0], "due_now"),
                                                          (refs[1], "due_soon"), (refs[1], "due_now")}


def test_email_and_webhook_recipients_get_outbox_rows_in_the_same_transaction(staffed: Forlop) -> None:
    ref = open_case(staffed)
    change(staffed, ref, lambda c: c.execute(RecordConsent("police", scope=["name", "contact", "threat_assessment"], given=True), actor="k1", at=T0 + timedelta(hours=1)))
    result = run_scan(staffed, now=T0 + timedelta(hours=18))
    with staffed.engine.connect() as conn:
        rows = conn.execute(sa.select(outbox_t.c.username, outbox_t.c.channel, outbox_t.c.status, outbox_t.c.payload)).all()
    assert result.outbox == len(rows) > 0
    assert {(u, ch) for u, ch, _, _ in rows} <= {("k1", "email"), ("p1", "webhook")}
    assert all(status == "pending" for _, _, status, _ in rows)
    assert all(set(p) == {"kind", "due_at", "link", "case_reference", "step_code", "unit", "count"} for *_, p in rows)


def test_the_inbox_counts_unread_and_marks_only_the_users_own_notifications(staffed: Forlop) -> None:
    open_case(staffed)
    run_scan(staffed, now=T0 + timedelta(days=3))
    run_digest(staffed, now=T0 + timedelta(days=3))  # the manager's inbox: the day's digest
    mine = inbox.inbox(engine=staffed.engine, username="k1")
    theirs = inbox.inbox(engine=staffed.engine, username="m1")
    assert mine and theirs
    total = inbox.unread_count(engine=staffed.engine, username="k1")
    assert total == len(inbox.inbox(engine=staffed.engine, username="k1", unread_only=True, limit=500))
    now = T0 + timedelta(days=3)
    assert inbox.mark_read(engine=staffed.engine, username="k1", ids=[mine[0].id, theirs[0].id], now=now) == 1
    assert inbox.unread_count(engine=staffed.engine, username="k1") == total - 1
    assert inbox.unread_count(engine=staffed.engine, username="m1") == len(
        inbox.inbox(engine=staffed.engine, username="m1", limit=500))
    assert inbox.mark_read(engine=staffed.engine, username="k1", ids=[mine[0].id], now=now, read=False) == 1
    assert inbox.unread_count(engine=staffed.engine, username="k1") == total


def _first_read(conn: sa.Connection, query: sa.Select[Any]) -> str:
    """The plan on statistics that know the cases and no reminders (where SQLite's planner once drove route's query
    from the case table): on SQLite its first table read (the loop all others run under), on PostgreSQL the whole
    plan without sequential scans."""
    sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
    conn.exec_driver_sql("ANALYZE")
    if conn.dialect.name == "sqlite":
        details = [r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
        return next(d for d in details if d.startswith(("SCAN", "SEARCH")))
    conn.exec_driver_sql("SET enable_seqscan = off")
    return " ".join(str(r) for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))


def test_the_scan_reads_its_batch_from_the_partial_index_before_any_case(staffed: Forlop) -> None:
    from pathway.store.scan import due_steps_query

    open_case(staffed)
    with staffed.engine.connect() as conn:
        plan = _first_read(conn, due_steps_query().params(now=T0 + timedelta(days=3), batch=1000))
    assert "ix_step_next_reminder" in plan


def test_routing_reads_its_batch_from_the_partial_index_before_any_case(staffed: Forlop) -> None:
    from pathway.store.scan import unrouted_query

    open_case(staffed)
    with staffed.engine.connect() as conn:
        plan = _first_read(conn, unrouted_query().params(batch=1000))
    assert "ix_reminder_unrouted" in plan


# -- a partner hears only of tasks its agency holds ---------------------------------------------------------------

POLICE_SCOPE = ["name", "contact", "threat_assessment"]


def heard(core: Forlop, code: str) -> set[tuple[str, str, str | None]]:
    """(user, rung kind, case reference) of every inbox row about checkpoint ``code``."""
    with core.engine.connect() as conn:
        rows = conn.execute(sa.select(notification_t.c.username, notification_t.c.kind, notification_t.c.case_reference)
                            .where(notification_t.c.step_code == code))
        return {(u, k, r) for u, k, r in rows}


def sent(core: Forlop, code: str) -> set[tuple[str, str, str, str]]:
    """(user, channel, rung kind, case reference) of every outbox row (email, webhook) about checkpoint ``code``."""
    with core.engine.connect() as conn:
        rows = conn.execute(sa.select(outbox_t.c.username, outbox_t.c.channel, outbox_t.c.payload)).all()
    return {(u, ch, p["kind"], p["case_reference"]) for u, ch, p in rows if p["step_code"] == code}


def test_nav_hears_nothing_of_housing_for_a_case_without_a_nav_task_and_the_coordinator_does(staffed: Forlop) -> None:
    ref = open_case(staffed)
    change(staffed, ref, lambda c: c.execute(AssignCoordinator("k1"), actor="m1", at=T0 + timedelta(minutes=5)))
    for code in ("K1", "K2"):
        change(staffed, ref, lambda c, code=code: c.execute(CompleteStep(code), actor="k1", at=T0 + timedelta(hours=1)))
    change(staffed, ref, lambda c: c.execute(Advance("start_support"), actor="k1", at=T0 + timedelta(hours=2)))
    # NAV holds a task in this case, but for the emergency money (K7), not for housing (K9, owners NAV and housing).
    change(staffed, ref, lambda c: c.execute(RecordConsent("nav", scope=["name", "contact", "finances"]), actor="k1",
                                             at=T0 + timedelta(hours=3)))
    change(staffed, ref, lambda c: c.execute(CreateHandover("K7"), actor="k1", at=T0 + timedelta(hours=4)))
    run_scan(staffed, now=T0 + timedelta(days=28, hours=1))  # K9 is due 28 days after first contact
    k9 = heard(staffed, "K9")
    assert {("k1", "due_soon", ref), ("k1", "due_now", ref)} <= k9
    assert not any(user == "n1" for user, _, _ in k9)
    assert not any(user == "n1" for user, *_ in sent(staffed, "K9"))
    assert {("n1", "due_soon", ref), ("n1", "due_now", ref)} <= heard(staffed, "K7")  # the task NAV does hold


def test_the_police_hear_of_k6_only_while_their_task_is_open_and_its_basis_covers_it(staffed: Forlop) -> None:
    no_task, narrowed, withdrawn, legal = (open_case(staffed) for _ in range(4))
    for ref in (no_task, narrowed, withdrawn, legal):
        change(staffed, ref, lambda c: c.execute(AssignCoordinator("k1"), actor="m1", at=T0 + timedelta(minutes=5)))
    for ref in (no_task, narrowed, withdrawn):
        change(staffed, ref, lambda c: c.execute(RecordConsent("police", scope=POLICE_SCOPE), actor="k1",
                                                 at=T0 + timedelta(hours=1)))
    for ref in (narrowed, withdrawn):
        change(staffed, ref, lambda c: c.execute(CreateHandover("K6"), actor="k1", at=T0 + timedelta(hours=2)))
    averting = CreateHandover("K6", legal_basis="avert_crime", reason="fare for nye overgrep")  # no consent needed
    change(staffed, legal, lambda c: c.execute(averting, actor="k1", at=T0 + timedelta(hours=2)))
    run_scan(staffed, now=T0 + timedelta(hours=3))  # each K6 is due a working day after consent: "due soon" now
    police = {(k, r) for u, k, r in heard(staffed, "K6") if u == "p1"}
    assert police == {("due_soon", narrowed), ("due_soon", withdrawn), ("due_soon", legal)}
    assert ("k1", "due_soon", no_task) in heard(staffed, "K6")  # consent, but no task: the coordinator's to chase
    assert {(ch, k, r) for u, ch, k, r in sent(staffed, "K6") if u == "p1"} == {
        ("webhook", "due_soon", narrowed), ("webhook", "due_soon", withdrawn), ("webhook", "due_soon", legal)}

    # The consent narrowed so that it no longer covers the task's scope, and one withdrawn (its task is cancelled).
    change(staffed, narrowed, lambda c: c.execute(RecordConsent("police", scope=["contact", "threat_assessment"]),
                                                  actor="k1", at=T0 + timedelta(hours=4)))
    change(staffed, withdrawn, lambda c: c.execute(RecordConsent("police", given=False, reason="trakk samtykket"),
                                                   actor="k1", at=T0 + timedelta(hours=4)))
    run_scan(staffed, now=T0 + timedelta(days=1, hours=3))  # "due now" for all four
    after = heard(staffed, "K6")
    assert {r for u, k, r in after if u == "p1" and k == "due_now"} == {legal}
    assert {r for u, k, r in after if u == "k1" and k == "due_now"} == {no_task, narrowed, withdrawn}
    assert {(k, r) for u, _, k, r in sent(staffed, "K6") if u == "p1"} == {
        ("due_soon", narrowed), ("due_soon", withdrawn), ("due_soon", legal), ("due_now", legal)}
