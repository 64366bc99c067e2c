"""The store on SQLite and PostgreSQL (the same tests, parameterised by the ``core`` fixture)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pathway import services
from pathway.bootstrap import Forlop
from pathway.case import Case, replay
from pathway.case import commands as do
from pathway.crypto import KeyRing, generate_key
from pathway.definition import parse_definition
from pathway.errors import ConcurrencyConflict, ConsentRequired, DefinitionError, DomainError, OperationNotAllowed
from pathway.people import PersonRecord
from pathway.settings import DEV_ENCRYPTION_KEYS
from pathway.store.tables import case_key_t, case_t, event_t, person_t, step_t
from pathway.store.uow import UnitOfWork

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)  # a Monday morning
PERSON = PersonRecord(
    name="Testperson Fiktivsen", birth_date=None, safe_contact="+47 000 00 000",
    address="Fiktivgata 1, 0000 Testby", address_protection="code6", children_ages=(4, 9),
)


def open_case(core: Forlop, *, person: PersonRecord | None = PERSON, at: datetime = T0, **kw: object) -> Case:
    return services.open_case(
        uow=core.uow(), pathway_id="krisesenter", unit="testenhet", first_contact_at=at, actor="koordinator",
        keys=core.keys, index_key=core.settings.index_key, reference_prefix="TST", person=person, at=at, **kw,
    )


def change(core: Forlop, ref: str, fn, version: int | None = None) -> Case:  # type: ignore[no-untyped-def]
    case, _ = services.change_case(uow=core.uow(), reference=ref, expected_version=version, change=fn)
    return case


def stored(core: Forlop, ref: str) -> Case:
    return services.get_case(uow=core.uow(), reference=ref)


def walk_to_closure(core: Forlop, ref: str) -> None:
    """A whole pathway with a pause, a skipped checkpoint, consent, a handover and an ad-hoc step."""
    at = T0
    def step(hours: float, fn) -> None:  # type: ignore[no-untyped-def]
        nonlocal at
        at += timedelta(hours=hours)
        moment = at
        change(core, ref, lambda c: fn(c, moment))

    step(2, lambda c, at: c.execute(do.CompleteStep("K1"), actor="k", at=at))
    step(1, lambda c, at: c.execute(do.CompleteStep("K2"), actor="k", at=at))
    step(1, lambda c, at: c.execute(do.SkipStep("K5", reason="vurdert: ikke aktuelt"), actor="k", at=at))
    step(1, lambda c, at: c.execute(do.AssignCoordinator("koordinator"), actor="leder", at=at))
    step(1, lambda c, at: c.execute(do.RecordConsent("police", scope=["name", "contact", "threat_assessment"], given=True), actor="k", at=at))
    step(1, lambda c, at: c.execute(do.Advance("start_support"), actor="k", at=at))
    step(1, lambda c, at: c.execute(do.CreateHandover("K6"), actor="k", at=at))
    step(2, lambda c, at: c.execute(do.Pause(reason="på sykehus"), actor="k", at=at))
    step(30, lambda c, at: c.execute(do.Resume(), actor="k", at=at))
    step(1, lambda c, at: c.execute(do.UpdateHandover(c.handovers[0].id, "accepted"), actor="politi", at=at))
    step(5, lambda c, at: c.execute(do.UpdateHandover(c.handovers[0].id, "completed", note="ok"), actor="politi", at=at))
    step(1, lambda c, at: c.execute(do.AddStep(title="Følge til tannlege", owner="coordinator", due_at=at + timedelta(days=3), reason="avtalt med personen"), actor="k", at=at))
    step(20, lambda c, at: c.execute(do.CompleteStep("A1"), actor="k", at=at))
    step(1, lambda c, at: c.execute(do.SkipStep("K7", reason="har egen inntekt"), actor="k", at=at))
    step(40, lambda c, at: c.execute(do.CompleteStep("K8"), actor="k", at=at))
    step(10, lambda c, at: c.execute(do.CompleteStep("K9"), actor="nav", at=at))
    step(5, lambda c, at: c.execute(do.Advance("move_out"), actor="k", at=at))
    step(48, lambda c, at: c.execute(do.CompleteStep("K11"), actor="k", at=at))
    step(24, lambda c, at: c.execute(do.Close("safe_housing"), actor="k", at=at))


def test_a_case_walked_to_closure_reloads_and_replays_to_the_same_state(core: Forlop) -> None:
    ref = open_case(core).reference
    walk_to_closure(core, ref)
    case = stored(core, ref)
    assert case.is_closed and case.outcome == "safe_housing"
    assert not case.open_steps()
    with core.uow() as uow:
        events = uow.cases.events(case, sealed=True)
    assert [e.seq for e in events] == list(range(1, case.version + 1))
    assert replay(events, core.catalog.resolve, case.sealer).digest() == case.digest()


def test_each_event_starts_from_the_state_the_one_before_left_also_for_a_case_written_without_it(
        core: Forlop) -> None:
    """One digest per event: state_before is the state_after before it (kept on the case row as head_digest, with
    the version it is of). A case last written before 0018 has none, and one last written by an older release
    (during an upgrade) has an older one: either way its next event computes the digest from the state as loaded,
    and every replay and audit still holds."""
    ref = open_case(core).reference
    walk_to_closure(core, ref)
    other, older = open_case(core).reference, open_case(core).reference
    with core.engine.begin() as conn:
        conn.execute(sa.update(case_t).where(case_t.c.reference == other).values(head_digest=None))
    at = T0 + timedelta(hours=1)
    change(core, older, lambda c: c.execute(do.CompleteStep("K1"), actor="k", at=at))
    with core.engine.begin() as conn:  # as an older release writes event 3: version and head_hash, not the digest
        kept = conn.execute(sa.select(case_t.c.head_digest).where(case_t.c.reference == older)).scalar()
    change(core, older, lambda c: c.execute(do.CompleteStep("K2"), actor="k", at=at))
    with core.engine.begin() as conn:
        conn.execute(sa.update(case_t).where(case_t.c.reference == older).values(head_digest=kept))
    for reference in (other, older):
        change(core, reference, lambda c: c.execute(do.Pause(reason="utilgjengelig"), actor="k", at=at))
    assert services.verify_audit(engine=core.engine, replay_with=core.catalog.resolve, keys=core.keys).problems == []
    for reference in (ref, other, older):
        case = stored(core, reference)
        with core.uow() as uow:
            events = uow.cases.events(case, sealed=True)
            kept = uow.conn.execute(sa.select(case_t.c.head_digest).where(case_t.c.id == case.id)).scalar()
        assert len(events) > 1
        for before, after in zip(events, events[1:]):
            assert after.state_before == before.state_after, (reference, after.seq)
        assert kept == f"{case.version}:{events[-1].state_after['digest']}" and case.head_digest == case.digest(), \
            "the row keeps the last state's digest, with its version"
        assert replay(events, core.catalog.resolve, case.sealer).digest() == case.digest()


def test_every_change_appends_exactly_one_event_with_author_time_and_reason(core: Forlop) -> None:
    ref = open_case(core).reference
    change(core, ref, lambda c: c.execute(do.Pause(reason="utilgjengelig"), actor="koordinator2", at=T0 + timedelta(hours=1)))
    case = stored(core, ref)
    with core.uow() as uow:
        last = uow.cases.events(case)[-1]
    assert (last.operation, last.actor, last.reason) == ("pause", "koordinator2", "utilgjengelig")
    assert last.at == T0 + timedelta(hours=1)
    assert last.state_before["paused"] is False and last.state_after["paused"] is True


def test_a_stale_version_is_refused_and_changes_nothing(core: Forlop) -> None:
    ref = open_case(core).reference
    version = stored(core, ref).version
    change(core, ref, lambda c: c.execute(do.CompleteStep("K1"), actor="a", at=T0 + timedelta(hours=1)), version=version)
    with pytest.raises(ConcurrencyConflict) as caught:
        change(core, ref, lambda c: c.execute(do.CompleteStep("K2"), actor="b", at=T0 + timedelta(hours=2)), version=version)
    assert caught.value.expected == version and caught.value.actual == version + 1
    case = stored(core, ref)
    assert case.version == version + 1
    assert next(s for s in case.steps if s.code == "K2").state == "active"


def test_two_writers_who_read_the_same_version_cannot_both_win(core: Forlop) -> None:
    ref = open_case(core).reference
    version = stored(core, ref).version  # both coordinators read this version
    results: list[str] = []
    barrier = threading.Barrier(2)
    operations = {
        "complete": lambda c: c.execute(do.CompleteStep("K1"), actor="a", at=T0 + timedelta(hours=1)),
        "pause": lambda c: c.execute(do.Pause(reason="utilgjengelig"), actor="b", at=T0 + timedelta(hours=1)),
    }

    def worker(name: str) -> None:
        barrier.wait(timeout=10)
        try:
            change(core, ref, operations[name], version=version)
            results.append(name)
        except ConcurrencyConflict:
            results.append("conflict")

    threads = [threading.Thread(target=worker, args=(name,)) for name in operations]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 2 and results.count("conflict") == 1
    case = stored(core, ref)
    assert case.version == version + 1
    winner = next(r for r in results if r != "conflict")
    assert (case.paused_since is not None) == (winner == "pause")
    assert (next(s for s in case.steps if s.code == "K1").state == "done") == (winner == "complete")


def test_a_refused_operation_writes_nothing(core: Forlop) -> None:
    ref = open_case(core).reference
    before = stored(core, ref)
    with pytest.raises(ConsentRequired):
        change(core, ref, lambda c: c.execute(do.CreateHandover("K6"), actor="k", at=T0 + timedelta(hours=1)))
    with pytest.raises(OperationNotAllowed):
        change(core, ref, lambda c: c.execute(do.Advance("start_support"), actor="k", at=T0 + timedelta(hours=1)))
    after = stored(core, ref)
    assert after.digest() == before.digest()
    with core.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(event_t)).scalar() == before.version


def test_person_data_is_encrypted_at_rest_and_found_by_exact_name(core: Forlop) -> None:
    ref = open_case(core).reference
    with core.engine.connect() as conn:
        dump = "".join(str(v) for row in conn.execute(sa.select(person_t)) for v in row)
        dump += "".join(str(v) for row in conn.execute(sa.select(event_t)) for v in row)
        dump += "".join(str(v) for row in conn.execute(sa.select(case_t)) for v in row)
        blob = conn.execute(sa.select(person_t.c.ciphertext)).scalar_one()
    for secret in ("Testperson", "Fiktivsen", "Fiktivgata", "+47 000"):
        assert secret not in dump and secret.encode() not in blob
    assert services.find_cases_by_name(uow=core.uow(), name="testperson  FIKTIVSEN", index_key=core.settings.index_key) == [ref]
    assert services.find_cases_by_name(uow=core.uow(), name="Testperson Annen", index_key=core.settings.index_key) == []
    person = services.read_person(uow=core.uow(), reference=ref, keys=core.keys)
    assert person == PERSON
    case = stored(core, ref)
    assert "children" in case.conditions  # derived from the person record, K5 applies
    assert any(s.code == "K5" for s in case.steps)


def test_key_rotation_rewraps_each_case_key_and_writes_no_data_row(core: Forlop) -> None:
    refs = [open_case(core).reference for _ in range(3)]
    for ref in refs:
        change(core, ref, lambda c: c.execute(do.Pause(reason="på sykehus"), actor="k", at=T0 + timedelta(hours=1)))
    with core.engine.connect() as conn:
        data_before = _data_rows(conn)
    written: dict[str, int] = {}

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        verb, _, rest = statement.lstrip().partition(" ")
        if verb.upper() in ("INSERT", "UPDATE", "DELETE"):
            table = rest.split()[1 if verb.upper() != "UPDATE" else 0].strip('"')
            written[table] = written.get(table, 0) + max(cursor.rowcount, 0)

    new_key = f"new:{generate_key()}"
    ring = KeyRing.parse(f"{new_key},{DEV_ENCRYPTION_KEYS}")
    sa.event.listen(core.engine, "after_cursor_execute", count)
    try:
        assert services.rewrap_case_keys(engine=core.engine, keys=ring) == 3, "one case key re-wrapped per case"
        assert services.rewrap_case_keys(engine=core.engine, keys=ring) == 0, "and done once"
        assert services.rotate_person_keys(engine=core.engine, keys=ring) == 0, "no record is the master key's"
    finally:
        sa.event.remove(core.engine, "after_cursor_execute", count)
    assert written == {"case_key": 3}, "three rows written, all of them keys: no person, event, step or case row"
    with core.engine.connect() as conn:
        assert _data_rows(conn) == data_before, "every sealed record and text is byte for byte as it was"
        assert set(conn.execute(sa.select(case_key_t.c.master_key_id)).scalars()) == {"new"}
    # The old master key can now leave the ring: the new one alone opens the records and the texts.
    alone = UnitOfWork(core.engine, core.catalog, keys=KeyRing.parse(new_key))
    assert services.read_person(uow=alone, reference=refs[0], keys=KeyRing.parse(new_key)) == PERSON
    with UnitOfWork(core.engine, core.catalog, keys=KeyRing.parse(new_key)) as uow:
        case = uow.cases.get(refs[0])
        assert uow.cases.events(case)[-1].reason == "på sykehus"


def _data_rows(conn: sa.Connection) -> list[object]:
    return [list(conn.execute(sa.select(t).order_by(*t.primary_key.columns)).all())
            for t in (person_t, event_t, step_t, case_t)]


def test_a_new_contact_within_twelve_months_is_flagged(core: Forlop) -> None:
    first = open_case(core).reference
    change(core, first, lambda c: c.execute(do.Close("declined", reason="takket nei"), actor="k", at=T0 + timedelta(days=2)))
    again = open_case(core, at=T0 + timedelta(days=200)).reference
    other = open_case(core, person=PERSON.model_copy(update={"name": "Annen Testperson"}),
                      at=T0 + timedelta(days=200)).reference
    with core.engine.connect() as conn:
        flags = dict(conn.execute(sa.select(case_t.c.reference, case_t.c.repeat_contact)).all())
    assert flags == {first: False, again: True, other: False}


def test_references_are_sequential_per_year_and_never_derived_from_the_person(core: Forlop) -> None:
    refs = [open_case(core, person=None).reference for _ in range(3)]
    assert refs == ["TST-2026-0001", "TST-2026-0002", "TST-2026-0003"]


def test_a_references_year_is_oslos_at_first_contact(core: Forlop) -> None:
    """New Year's Day begins in Oslo an hour (in winter) before it does in UTC."""
    late = datetime(2026, 12, 31, 22, 59, tzinfo=timezone.utc)  # 23:59 on New Year's Eve in Oslo
    early = datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc)  # 00:30 on New Year's Day in Oslo
    assert [open_case(core, person=None, at=at).reference for at in (late, early)] == ["TST-2026-0001", "TST-2027-0001"]


def test_open_steps_by_due_time_use_the_partial_index(core: Forlop) -> None:
    indexes = {ix["name"]: ix for ix in sa.inspect(core.engine).get_indexes("step")}
    assert "ix_step_open_due" in indexes
    assert {"ix_case_unit_phase"} <= {ix["name"] for ix in sa.inspect(core.engine).get_indexes("pathway_case")}
    open_case(core)
    query = (sa.select(step_t.c.id).where(step_t.c.ended_at.is_(None), step_t.c.due_at.is_not(None),
                                          step_t.c.due_at < T0 + timedelta(days=60))
             .order_by(step_t.c.due_at).limit(1000))
    with core.engine.connect() as conn:
        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        if core.engine.dialect.name == "sqlite":
            plan = " ".join(str(r) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(str(r) for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))
    assert "ix_step_open_due" in plan


def test_a_definition_version_cannot_change_once_registered(core: Forlop) -> None:
    source = (core.settings.definitions_dir / "krisesenter.yaml").read_text(encoding="utf-8")
    edited = parse_definition(source.replace("hours: 24}", "hours: 12}", 1))
    with pytest.raises(DefinitionError, match="already registered"):
        core.catalog.register(edited)
    assert core.catalog.register(parse_definition(source)) is False


def test_open_cases_migrate_to_a_new_version_only_with_a_complete_mapping(core: Forlop) -> None:
    source = (core.settings.definitions_dir / "krisesenter.yaml").read_text(encoding="utf-8")
    v2 = core.catalog.latest("krisesenter")  # the live version, and the next one with K8 renamed
    v3 = parse_definition(source.replace(f"version: {v2.version}", f"version: {v2.version + 1}")
                          .replace("code: K8", "code: K8b"))
    ref = open_case(core).reference
    change(core, ref, lambda c: c.execute(do.CompleteStep("K1"), actor="k", at=T0 + timedelta(hours=1)))
    core.catalog.register(v3)
    identity = {c.code: c.code for c in v2.checkpoints if c.code != "K8"}
    partial = {k: v for k, v in identity.items() if k != "K1"}
    refused = services.migrate_cases(uow_factory=core.uow, source=v2, target=v3, mapping=partial, actor="admin",
                                     reason="ny versjon", apply=True)
    assert "K1" in refused.unmapped and refused.moved == 0
    dry = services.migrate_cases(uow_factory=core.uow, source=v2, target=v3, mapping={**identity, "K8": "K8b"},
                                 actor="admin", reason="ny versjon")
    assert dry.moved == 1 and stored(core, ref).definition.version == v2.version
    done = services.migrate_cases(uow_factory=core.uow, source=v2, target=v3, mapping={**identity, "K8": "K8b"},
                                  actor="admin", reason="ny versjon", apply=True)
    case = stored(core, ref)
    assert done.moved == 1 and case.definition.version == v3.version
    assert services.verify_audit(engine=core.engine, replay_with=core.catalog.resolve, keys=core.keys).ok


def test_audit_verify_finds_an_edited_a_deleted_and_a_truncated_chain(core: Forlop) -> None:
    refs = [open_case(core).reference for _ in range(3)]
    for ref in refs:
        change(core, ref, lambda c: c.execute(do.CompleteStep("K1"), actor="k", at=T0 + timedelta(hours=1)))
        change(core, ref, lambda c: c.execute(do.CompleteStep("K2"), actor="k", at=T0 + timedelta(hours=2)))
    assert services.verify_audit(engine=core.engine, replay_with=core.catalog.resolve, keys=core.keys).ok
    ids = {ref: stored(core, ref).id for ref in refs}
    with core.engine.begin() as conn:
        conn.execute(sa.update(event_t).where(event_t.c.case_id == ids[refs[0]], event_t.c.seq == 3)
                     .values(reason="endret i ettertid"))
        conn.execute(sa.delete(event_t).where(event_t.c.case_id == ids[refs[1]], event_t.c.seq == 2))
        last = conn.execute(sa.select(sa.func.max(event_t.c.seq)).where(event_t.c.case_id == ids[refs[2]])).scalar()
        conn.execute(sa.delete(event_t).where(event_t.c.case_id == ids[refs[2]], event_t.c.seq == last))
    report = services.verify_audit(engine=core.engine)
    text = "\n".join(report.problems)
    assert f"{refs[0]}: event 3" in text and "altered" in text
    assert f"{refs[1]}: event 2 is missing" in text
    assert f"{refs[2]}: the case is at version" in text
    assert len(report.problems) == 3


def test_a_case_row_edited_behind_the_engines_back_fails_the_replay_check(core: Forlop) -> None:
    ref = open_case(core).reference
    with core.engine.begin() as conn:
        conn.execute(sa.update(step_t).where(step_t.c.code == "K1").values(state="done"))
    report = services.verify_audit(engine=core.engine, replay_with=core.catalog.resolve, keys=core.keys)
    assert report.problems == [f"{ref}: the stored case differs from the state its events rebuild"]


OPS = st.lists(st.sampled_from(["K1", "K2", "K5", "K8", "K12", "pause", "resume", "consent", "handover",
                                "advance", "back", "close", "coordinator"]), min_size=1, max_size=14)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_random_operation_sequences_persist_and_replay_exactly(core: Forlop, ops: list[str]) -> None:
    ref = open_case(core, person=None, conditions=["children"]).reference
    at = T0
    for op in ops:
        at += timedelta(hours=7)
        moment = at
        fn = {
            "pause": lambda c: c.execute(do.Pause(reason="r"), actor="k", at=moment),
            "resume": lambda c: c.execute(do.Resume(), actor="k", at=moment),
            "consent": lambda c: c.execute(do.RecordConsent("police", scope=["name", "contact", "threat_assessment"], given=True), actor="k", at=moment),
            "handover": lambda c: c.execute(do.CreateHandover("K6"), actor="k", at=moment),
            "advance": lambda c: c.execute(do.Advance("start_support"), actor="k", at=moment),
            "back": lambda c: c.execute(do.Advance("back_to_intake", reason="tilbake"), actor="k", at=moment),
            "close": lambda c: c.execute(do.Close("ended_early", reason="avsluttet"), actor="k", at=moment),
            "coordinator": lambda c: c.execute(do.AssignCoordinator("k2", reason="bytte"), actor="k", at=moment),
        }.get(op, lambda c, code=op: c.execute(do.CompleteStep(code), actor="k", at=moment))
        before = stored(core, ref)
        try:
            change(core, ref, fn)
        except DomainError:
            assert stored(core, ref).digest() == before.digest()
    case = stored(core, ref)
    with core.uow() as uow:
        events = uow.cases.events(case, sealed=True)
    assert replay(events, core.catalog.resolve, case.sealer).digest() == case.digest()
