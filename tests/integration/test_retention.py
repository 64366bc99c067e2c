"""Retention on SQLite and PostgreSQL: a closed case is erased when its period (per unit, or the default) has ended,
unless a legal hold stops it; erasure deletes the person record with its blind index and the child's record, destroys
the case key, keeps the case, its steps and events (the audit chain verifies), logs nothing personal, and happens
once however many runs there are."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from pathway import services
from pathway.bootstrap import Forlop
from pathway.case import commands as do
from pathway.errors import InvalidArgument
from pathway.metrics import timeliness
from pathway.metrics.snapshots import YEARS_KEPT_FRESH, to_json
from pathway.scheduler import build_scheduler, run_retention_job
from pathway.services import referrals, retention
from pathway.services.retention import RetentionRefused, due_for_erasure, run_retention
from pathway.settings import Settings
from pathway.store.casekeys import ERASED, key_of
from pathway.store.tables import (
    case_key_t, case_t, child_t, erasure_t, event_t, handover_t, legal_hold_t, person_t, referral_t, step_t,
)
from tests.integration.test_children_pathways import ASTRID, add_child
from tests.integration.test_store import PERSON, T0, change, open_case

CLOSED = T0 + timedelta(days=2)
DAYS = 1826
ERASE_FROM = CLOSED + timedelta(days=DAYS)


def settings(**kw: object) -> Settings:
    return Settings(env="test", units=("testenhet", "annen"), **kw)  # type: ignore[arg-type]


def close(core: Forlop, reference: str, at: datetime = CLOSED, outcome: str = "declined") -> None:
    change(core, reference, lambda c: c.execute(do.Close(outcome, reason="takket nei"), actor="k", at=at))


def closed_case(core: Forlop, at: datetime = CLOSED) -> str:
    reference = open_case(core).reference
    close(core, reference, at)
    return reference


def case_id(core: Forlop, reference: str):  # type: ignore[no-untyped-def]
    with core.engine.connect() as conn:
        return retention.case_id_of(conn, reference)


def run(core: Forlop, now: datetime, s: Settings | None = None) -> retention.RetentionResult:
    return run_retention(engine=core.engine, settings=s or settings(), now=now, by="scheduler")


def due(core: Forlop, now: datetime, s: Settings | None = None) -> dict[str, retention.Due]:
    with core.engine.connect() as conn:
        return {d.reference: d for d in due_for_erasure(conn, settings=s or settings(), now=now)}


def hold(core: Forlop, reference: str, reason: str = "klage til Statsforvalteren", *, lift: bool = False,
         at: datetime = CLOSED) -> None:
    with core.engine.begin() as conn:
        do_it = retention.lift_hold if lift else retention.set_hold
        do_it(conn, case_id=retention.case_id_of(conn, reference), by="admin", reason=reason, at=at, keys=core.keys)


def counts(core: Forlop, table: sa.Table, reference: str) -> int:
    with core.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table).join(case_t, case_t.c.id == table.c.case_id)
                                .where(case_t.c.reference == reference)).scalar_one())


def test_the_default_period_is_five_years_and_never_shorter_than_a_report_reaches_back() -> None:
    assert Settings().retention_days == DAYS
    assert DAYS >= YEARS_KEPT_FRESH * 366


def test_a_closed_case_is_due_when_its_period_has_ended_and_an_open_case_never(core: Forlop) -> None:
    reference = closed_case(core)
    still_open = open_case(core).reference
    listed = due(core, ERASE_FROM)
    assert set(listed) == {reference}
    assert listed[reference].erase_from == ERASE_FROM and not listed[reference].held
    assert listed[reference].rule == "retention: 1826 days after closure (FORLOP_RETENTION_DAYS)"
    assert not listed[reference].is_due(ERASE_FROM - timedelta(seconds=1))
    assert run(core, ERASE_FROM - timedelta(seconds=1)).erased == []
    assert run(core, ERASE_FROM).erased == [reference]
    assert counts(core, person_t, still_open) == 1


def test_a_units_own_period_replaces_the_default(core: Forlop) -> None:
    reference = closed_case(core)
    s = settings(retention_days_by_unit="testenhet=3650")
    assert due(core, ERASE_FROM, s)[reference].rule == \
        "retention: 3650 days after closure (FORLOP_RETENTION_DAYS_BY_UNIT testenhet=3650)"
    assert run(core, ERASE_FROM, s).erased == []
    assert run(core, CLOSED + timedelta(days=3650), s).erased == [reference]
    shorter = settings(retention_days_by_unit="testenhet=30")
    other = closed_case(core)
    assert run(core, CLOSED + timedelta(days=30), shorter).erased == [other]


def test_erasure_deletes_the_person_and_blind_index_destroys_the_key_and_keeps_the_case_and_its_history(
        core: Forlop) -> None:
    reference = closed_case(core)
    with core.engine.connect() as conn:
        before = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                  for t in (case_t, step_t, event_t, handover_t)}
        head = conn.execute(sa.select(case_t.c.head_hash, case_t.c.outcome, case_t.c.closed_at)).one()
    assert run(core, ERASE_FROM).erased == [reference]
    with core.engine.connect() as conn:
        after = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                 for t in (case_t, step_t, event_t, handover_t)}
        assert after == before
        assert conn.execute(sa.select(case_t.c.head_hash, case_t.c.outcome, case_t.c.closed_at)).one() == head
        assert conn.execute(sa.select(person_t)).all() == []
        assert conn.execute(sa.select(person_t).where(person_t.c.name_index.is_not(None))).all() == []
        key = conn.execute(sa.select(case_key_t)).one()
        assert key.wrapped is None and key.erased_at == ERASE_FROM
        assert key_of(conn, key.case_id, core.keys) is ERASED
    assert services.verify_audit(engine=core.engine, replay_with=core.catalog.resolve, keys=core.keys).ok
    assert services.read_person(uow=core.uow(), reference=reference, keys=core.keys) is None
    assert services.find_cases_by_name(uow=core.uow(), name=PERSON.name, index_key=core.settings.index_key) == []


def test_the_erasure_log_says_reference_unit_times_and_rule_and_nothing_personal(core: Forlop) -> None:
    reference = closed_case(core)
    run(core, ERASE_FROM)
    with core.engine.connect() as conn:
        rows = retention.erasure_log(conn)
        raw = [dict(r._mapping) for r in conn.execute(sa.select(erasure_t))]
    assert rows == [{"reference": reference, "unit": "testenhet", "closed_at": CLOSED, "erased_at": ERASE_FROM,
                     "rule": "retention: 1826 days after closure (FORLOP_RETENTION_DAYS)", "erased_by": "scheduler"}]
    text = repr(raw)
    for personal in (PERSON.name, PERSON.address, PERSON.safe_contact, "takket nei"):
        assert personal not in text


def test_a_hold_stops_erasure_and_lifting_it_lets_the_next_run_erase(core: Forlop) -> None:
    reference = closed_case(core)
    hold(core, reference)
    assert due(core, ERASE_FROM)[reference].held
    result = run(core, ERASE_FROM)
    assert result.erased == [] and result.held == 1
    assert counts(core, person_t, reference) == 1
    hold(core, reference, "saken er avgjort", lift=True, at=ERASE_FROM)
    assert run(core, ERASE_FROM + timedelta(days=1)).erased == [reference]
    with core.engine.connect() as conn:
        holds = retention.holds_of(conn, case_id(core, reference), core.keys)
    assert len(holds) == 1 and holds[0].lifted_at == ERASE_FROM and holds[0].lifted_by == "admin"


def test_a_hold_needs_a_reason_and_is_one_at_a_time(core: Forlop) -> None:
    reference = closed_case(core)
    for reason in ("", "   ", "x" * 2001):
        with pytest.raises(InvalidArgument):
            hold(core, reference, reason)
    with pytest.raises(RetentionRefused) as lifted:
        hold(core, reference, "ingen", lift=True)
    assert lifted.value.rule == "not_held"
    hold(core, reference)
    with pytest.raises(RetentionRefused) as twice:
        hold(core, reference)
    assert twice.value.rule == "held"
    with core.engine.connect() as conn:
        holds = retention.holds_of(conn, case_id(core, reference), core.keys)
        active = retention.active_holds(conn, core.keys)
    assert [h.reason for h in holds] == ["klage til Statsforvalteren"]
    assert [(a.reference, a.hold.reason) for a in active] == [(reference, "klage til Statsforvalteren")]


def test_an_erased_case_cannot_be_held(core: Forlop) -> None:
    reference = closed_case(core)
    run(core, ERASE_FROM)
    with pytest.raises(RetentionRefused) as refused:
        hold(core, reference)
    assert refused.value.rule == "erased"


def test_a_hold_on_the_adults_case_or_a_childs_holds_the_family_and_an_open_child_keeps_the_adults(
        core: Forlop) -> None:
    adult = open_case(core).reference
    child = add_child(core, adult, ASTRID, at=T0 + timedelta(hours=1)).reference
    close(core, adult)
    listed = due(core, ERASE_FROM)
    assert set(listed) == {adult} and listed[adult].waiting
    assert run(core, ERASE_FROM).erased == []
    close(core, child, outcome="ended_early")
    hold(core, adult)
    listed = due(core, ERASE_FROM)
    assert listed[adult].held and listed[child].held
    assert run(core, ERASE_FROM).erased == []
    hold(core, adult, "avgjort", lift=True)
    hold(core, child, "klage som gjelder barnet")  # a hold on the child's pathway holds the adult's case too
    assert {r for r, d in due(core, ERASE_FROM).items() if d.held} == {adult, child}
    hold(core, child, "avgjort", lift=True)
    assert sorted(run(core, ERASE_FROM).erased) == sorted([adult, child])
    assert counts(core, child_t, child) == 0 and counts(core, person_t, adult) == 0
    assert services.verify_audit(engine=core.engine, replay_with=core.catalog.resolve, keys=core.keys).ok


def test_running_twice_erases_once(core: Forlop) -> None:
    reference = closed_case(core)
    assert run(core, ERASE_FROM).erased == [reference]
    assert run(core, ERASE_FROM + timedelta(days=1)).erased == []
    with core.engine.begin() as conn:  # erasing an erased case directly does nothing either
        assert not retention.erase_case(conn, case_id=case_id(core, reference), rule="r", at=ERASE_FROM, by="x")
    with core.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(erasure_t)).scalar_one() == 1


def test_two_runs_at_once_erase_each_case_once(core: Forlop) -> None:
    references = {closed_case(core) for _ in range(6)}
    results: list[retention.RetentionResult] = []
    runs = [threading.Thread(target=lambda: results.append(run(core, ERASE_FROM))) for _ in range(2)]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    assert sorted(results[0].erased + results[1].erased) == sorted(references)
    with core.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(erasure_t)).scalar_one() == 6


def test_the_scheduler_runs_retention_once_a_day_at_night(core: Forlop) -> None:
    jobs = {j.id: j for j in build_scheduler(core).get_jobs()}
    assert "run_retention_job" in jobs
    assert "hour='2'" in str(jobs["run_retention_job"].trigger)
    reference = closed_case(core)
    core.settings = settings()  # the core's own units do not include the tests' unit; the default period applies
    assert run_retention_job(core, now=ERASE_FROM).erased == [reference]


def test_an_open_case_is_never_erased_directly(core: Forlop) -> None:
    reference = open_case(core).reference
    with core.engine.begin() as conn, pytest.raises(RetentionRefused):
        retention.erase_case(conn, case_id=retention.case_id_of(conn, reference), rule="r", at=ERASE_FROM, by="x")


def test_holds_are_stored_sealed_under_the_case_key_when_the_case_has_one(core: Forlop) -> None:
    reference = closed_case(core)
    hold(core, reference)
    with core.engine.connect() as conn:
        stored = conn.execute(sa.select(legal_hold_t.c.reason)).scalar_one()
        sealer = key_of(conn, case_id(core, reference), core.keys)
    assert sealer.open(stored) == "klage til Statsforvalteren"


def test_the_database_no_longer_holds_the_sealed_record_that_erasure_deleted(core: Forlop) -> None:
    """SQLite zeroes what it deletes (its file and WAL are searched); PostgreSQL's fresh dump has none of it."""
    reference = closed_case(core)
    with core.engine.connect() as conn:
        if core.engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
        blob = conn.execute(sa.select(person_t.c.ciphertext)).scalar_one()
        wrapped = conn.execute(sa.select(case_key_t.c.wrapped)).scalar_one()
    assert run(core, ERASE_FROM).erased == [reference]
    url = core.engine.url
    if core.engine.dialect.name == "sqlite":
        path = url.database
        assert path is not None
        held = b"".join(open(path + suffix, "rb").read() for suffix in ("", "-wal") if os.path.exists(path + suffix))
        assert blob[:32] not in held and wrapped[:32] not in held
    else:
        dump = subprocess.run(["pg_dump", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
                               "-U", url.username or "postgres", str(url.database)],
                              capture_output=True, check=True, timeout=120).stdout
        assert blob[:32].hex().encode() not in dump and wrapped[:32].hex().encode() not in dump


def test_after_erasing_the_database_lets_go_of_the_old_rows_without_a_failure(core: Forlop,
                                                                               caplog: pytest.LogCaptureFixture) -> None:
    closed_case(core)
    with caplog.at_level("WARNING", logger="forlop.retention"):
        assert len(run(core, ERASE_FROM).erased) == 1
    assert not [r for r in caplog.records if r.name == "forlop.retention" and r.levelname == "WARNING"]


def test_every_managers_figure_of_an_erased_case_is_unchanged(core: Forlop) -> None:
    from pathway.metrics.collect import collect
    from pathway.metrics.periods import periods_covering

    reference = open_case(core).reference
    change(core, reference, lambda c: c.execute(do.CompleteStep("K1", note="personen var på sykehus"), actor="k",
                                                         at=T0 + timedelta(hours=30)))
    close(core, reference)
    tertials = periods_covering(T0.date(), CLOSED.date(), "tertial")

    def figures() -> tuple[object, ...]:
        got = collect(engine=core.engine, resolve=core.catalog.resolve, tertials=tertials, now=ERASE_FROM,
                      keys=core.keys)
        report = timeliness(engine=core.engine, resolve=core.catalog.resolve, keys=core.keys, period="month",
                            start=T0.date(), end=CLOSED.date(), now=ERASE_FROM)
        return (got.counts, dict(got.leads), sum(sum(c.values()) for c in got.reasons.values()),
                json.dumps(to_json(report), sort_keys=True))

    before = figures()
    assert before[0] and before[2]  # figures, and the deviation's reason among them
    assert run(core, ERASE_FROM).erased == [reference]
    assert figures() == before, "the same counts, lead times and reasons counted; the report byte for byte"


def test_the_police_referral_that_opened_an_erased_case_keeps_its_status_and_loses_its_content(core: Forlop) -> None:
    from pathway.services import referrals
    from pathway.store.tables import referral_t

    referral_id = referrals.send(
        engine=core.engine, keys=core.keys, units=("testenhet",), sender="politi", agency="police", unit="testenhet",
        content=referrals.content_of(PERSON.name, "+47 000 00 000", "slått av partner"), risk="medium",
        contact_agreed=True, public_url="https://forlop.invalid", at=T0)
    reference = referrals.accept(
        uow=core.uow(), referral_id=referral_id, unit="testenhet", expected_version=1, actor="koordinator",
        keys=core.keys, index_key=core.settings.index_key, reference_prefix="TST", pathway_id="krisesenter",
        at=T0 + timedelta(hours=1)).reference
    close(core, reference)
    assert run(core, ERASE_FROM).erased == [reference]
    with core.engine.connect() as conn:
        row = conn.execute(sa.select(referral_t).where(referral_t.c.id == referral_id)).one()
    assert row.ciphertext is None and row.key_id is None
    assert (row.status, row.risk, row.unit) == ("accepted", "medium", "testenhet")
    assert referrals.rotate_referral_keys(engine=core.engine, keys=core.keys) == 0  # nothing left to re-encrypt


def test_a_declined_referral_forgets_who_it_named_and_why_once_the_period_has_passed(core: Forlop) -> None:
    content = referrals.content_of("Tora Testperson", "+47 400 00 000", "truet i hjemmet")
    referral_id = referrals.send(
        engine=core.engine, keys=core.keys, units=("testenhet",), sender="politi", agency="police", unit="testenhet",
        content=content, risk="high", contact_agreed=True, public_url="http://localhost", at=T0)
    referrals.decline(engine=core.engine, keys=core.keys, referral_id=referral_id, unit="testenhet",
                               expected_version=None, actor="k", reason="bor i en annen kommune",
                               public_url="http://localhost", at=CLOSED)

    def kept() -> tuple[object, object, str]:
        with core.engine.connect() as conn:
            r = conn.execute(sa.select(referral_t.c.ciphertext, referral_t.c.decline_reason, referral_t.c.status)
                             .where(referral_t.c.id == referral_id)).one()
        return r.ciphertext, r.decline_reason, r.status

    assert run(core, ERASE_FROM - timedelta(seconds=1)).referrals == 0
    assert kept()[0] is not None and kept()[1] == "bor i en annen kommune"
    assert run(core, ERASE_FROM).referrals == 1
    assert kept() == (None, None, "declined"), "its status stays for the police's list; who and why are gone"
    with core.engine.connect() as conn:
        assert referrals.queue(conn, unit="testenhet", keys=core.keys, status=None) == []


def test_a_hold_being_set_on_a_childs_pathway_keeps_the_run_off_the_whole_family(core: Forlop) -> None:
    adult = open_case(core).reference
    child = add_child(core, adult, ASTRID, at=T0 + timedelta(hours=1)).reference
    close(core, child, outcome="ended_early")
    close(core, adult)
    if core.engine.dialect.name == "postgresql":
        # The administrator's transaction has locked the family and written the hold, not yet committed: the run
        # neither waits nor erases (it cannot see the hold yet), and leaves the family to a later run.
        with core.engine.connect() as conn, conn.begin():
            retention.set_hold(conn, case_id=retention.case_id_of(conn, child), by="admin", reason="klage",
                               at=CLOSED, keys=core.keys)
            meanwhile = run(core, ERASE_FROM)
        assert meanwhile.erased == [] and meanwhile.skipped == 2
    else:  # SQLite has one writer: the hold commits before the run begins, or after it ends
        hold(core, child, "klage")
    assert run(core, ERASE_FROM).erased == [], "and once the hold is in, it holds the adult's case too"
    hold(core, child, "avgjort", lift=True)
    assert sorted(run(core, ERASE_FROM).erased) == sorted([adult, child])
