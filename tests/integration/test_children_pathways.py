"""A case with children runs one pathway per child beside the adult's (action plan, measure 11), through the store on
SQLite and PostgreSQL: independent deadlines, reminders and clocks; the school handover under the parent's consent
that never carries an address or the school; the child-welfare handover without consent, with a reason; the same
access rules as the adult's case; the child's record encrypted."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from pathway import policy, services
from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.calendar import OSLO
from pathway.case import Case, replay
from pathway.case import commands as do
from pathway.errors import DomainError, InvalidArgument
from pathway.people import ChildRecord
from pathway.store.scan import scan
from pathway.store.tables import child_t, reminder_t, step_t
from pathway.views.tasks import agency_tasks
from tests.integration.test_store import PERSON, open_case, stored

# Monday 1 March 2027 09:00 in Oslo (a week without holidays): the adult's first contact; the children are
# registered the day after.
MONDAY = datetime(2027, 3, 1, 9, tzinfo=OSLO)
TUESDAY = MONDAY + timedelta(days=1)
ASTRID = ChildRecord(first_name="Testbarn Astrid", birth_year=2017, school="Fiktiv barneskole")
BJORN = ChildRecord(first_name="Testbarn Bjørn", birth_year=2021, school="Fiktiv barnehage")


def add_child(core: Forlop, reference: str, child: ChildRecord, *, at: datetime, **kw: object) -> Case:
    return services.open_child_pathway(uow=core.uow(), reference=reference, expected_version=None, child=child,
                                       actor="koordinator", keys=core.keys, at=at, reference_prefix="TST", **kw)


def due(case: Case, code: str) -> datetime | None:
    return max((s for s in case.steps if s.code == code), key=lambda s: s.occurrence).due_at


def run(core: Forlop, reference: str, command: do.Command, at: datetime, **kw: object) -> Case:
    case, _ = services.execute(uow=core.uow(), reference=reference, expected_version=None, command=command,
                               actor="koordinator", at=at, **kw)
    return case


@pytest.fixture
def family(core: Forlop) -> tuple[Case, Case, Case]:
    adult = open_case(core, at=MONDAY)
    first = add_child(core, adult.reference, ASTRID, at=TUESDAY)
    second = add_child(core, adult.reference, BJORN, at=TUESDAY + timedelta(hours=3),
                       conditions=["shared_parental_responsibility"])
    return stored(core, adult.reference), stored(core, first.reference), stored(core, second.reference)


def test_a_case_with_two_children_runs_three_pathways_with_their_own_deadlines(
        core: Forlop, family: tuple[Case, Case, Case]) -> None:
    adult, first, second = family
    # Each child's pathway has a reference of its own from the counter, never the adult's with a suffix (a reference
    # travels in emails and the agencies' tasks, where it must not say that the case has children).
    assert len({adult.reference, first.reference, second.reference}) == 3
    assert all(not c.reference.startswith(adult.reference) for c in (first, second))
    assert first.definition.id == second.definition.id == "barn" and adult.definition.id == "krisesenter"
    assert first.part_of == second.part_of == adult.id and adult.part_of is None
    assert first.unit == second.unit == adult.unit
    # Each clock starts when its pathway does: the adult's K1 on Monday + 24 h, a child's B1 two working days on.
    assert due(adult, "K1") == MONDAY + timedelta(hours=24)
    assert due(first, "B1") == TUESDAY + timedelta(days=2)
    assert due(second, "B1") == TUESDAY + timedelta(days=2, hours=3)
    # The adult's timeline records each child's pathway by reference, and replay rebuilds all three.
    with core.uow() as uow:
        opened = [e.payload["reference"] for e in uow.cases.events(adult) if e.operation == "child_pathway_opened"]
        assert opened == [first.reference, second.reference]
        for case in (adult, first, second):
            assert replay(uow.cases.events(case, sealed=True), core.catalog.resolve, case.sealer).digest() == case.digest()
    # Completing the adult's step leaves the children's alone, and the other way round.
    run(core, first.reference, do.CompleteStep("B1"), TUESDAY + timedelta(hours=5))
    assert due(stored(core, second.reference), "B1") == TUESDAY + timedelta(days=2, hours=3)
    assert stored(core, adult.reference).latest("K1").is_open  # type: ignore[union-attr]


def test_reminders_are_raised_per_pathway(core: Forlop, family: tuple[Case, Case, Case]) -> None:
    adult, first, second = family
    run(core, first.reference, do.CompleteStep("B2"), TUESDAY + timedelta(hours=1))  # assessed: no notice needed

    def reminded(now: datetime) -> dict[str, set[str]]:
        scan(engine=core.engine, resolve=core.catalog.resolve, now=now)
        with core.engine.connect() as conn:
            rows = conn.execute(sa.select(reminder_t.c.case_id, step_t.c.code)
                                .join(step_t, step_t.c.id == reminder_t.c.step_id)).all()
        by_case = {adult.id: adult.reference, first.id: first.reference, second.id: second.reference}
        found: dict[str, set[str]] = {}
        for case_id, code in rows:
            found.setdefault(by_case[case_id], set()).add(code)
        return found

    # Tuesday 09:00: the adult's K1/K2 are due now; the children's B2 (1 working day) are due Wednesday.
    at_tuesday = reminded(TUESDAY)
    assert {"K1", "K2"} <= at_tuesday[adult.reference]
    assert first.reference not in at_tuesday and second.reference not in at_tuesday
    # Wednesday 12:00: the second child's B2 is due in under a day; the first child's was done.
    at_wednesday = reminded(TUESDAY + timedelta(days=1, hours=3))
    assert "B2" in at_wednesday[second.reference]
    assert "B2" not in at_wednesday.get(first.reference, set())


def test_pausing_the_adults_clock_pauses_a_childs_only_when_asked(
        core: Forlop, family: tuple[Case, Case, Case]) -> None:
    adult, first, second = family
    at = TUESDAY + timedelta(hours=4)
    run(core, adult.reference, do.Pause(reason="på sykehus"), at)
    assert stored(core, adult.reference).paused_since == at
    assert stored(core, first.reference).paused_since is None and stored(core, second.reference).paused_since is None
    before = due(stored(core, first.reference), "B1")
    run(core, adult.reference, do.Resume(), at + timedelta(days=1))
    assert due(stored(core, first.reference), "B1") == before, "the child's clock kept running"
    # Asked: the children's clocks stop and start with the adult's, in one transaction each way.
    run(core, adult.reference, do.Pause(reason="familien er på reise"), at + timedelta(days=2), children=True)
    assert all(stored(core, c.reference).paused_since == at + timedelta(days=2) for c in (adult, first, second))
    run(core, adult.reference, do.Resume(), at + timedelta(days=3), children=True)
    assert all(stored(core, c.reference).paused_since is None for c in (adult, first, second))


def test_the_school_handover_carries_the_first_name_and_the_parents_contact_and_never_an_address(
        core: Forlop, family: tuple[Case, Case, Case]) -> None:
    _, first, second = family
    at = TUESDAY + timedelta(hours=2)
    # Without the parent's consent the handover is refused: the school has no legal basis.
    with pytest.raises(DomainError):
        run(core, second.reference, do.CreateHandover("B3"), at)
    assert stored(core, second.reference).handovers == []
    # The other parent shares parental responsibility: whoever sends it is warned, in both languages.
    warnings = second.definition.handover_warnings("B3", second.conditions)
    assert warnings and "foreldreansvaret" in warnings[0].nb and "parental responsibility" in warnings[0].en
    assert first.definition.handover_warnings("B3", first.conditions) == []
    run(core, second.reference, do.RecordConsent("school", ("name", "contact")), at)
    run(core, second.reference, do.CreateHandover("B3", note="Oppstart mandag"), at + timedelta(minutes=1))
    with core.engine.connect() as conn:
        (task,) = agency_tasks(conn, agency="school", catalog=core.catalog, keys=core.keys)
    assert task.case_reference == second.reference
    assert task.person_name == "Testbarn Bjørn", "the child's first name, not the parent's"
    assert task.safe_contact == PERSON.safe_contact, "the parent's safe contact channel"
    shown = repr(task)
    assert PERSON.address not in shown and "Fiktivgata" not in shown
    assert "Fiktiv barnehage" not in shown, "the school is the receiver, not something told to it"
    assert PERSON.name not in shown


def test_a_child_welfare_handover_goes_without_consent_with_a_reason(
        core: Forlop, family: tuple[Case, Case, Case]) -> None:
    _, first, _ = family
    at = TUESDAY + timedelta(hours=2)
    with pytest.raises(InvalidArgument) as refused:
        run(core, first.reference, do.CreateHandover("B2", legal_basis="child_welfare_duty"), at)
    assert refused.value.field == "reason"
    run(core, first.reference, do.CreateHandover("B2", legal_basis="child_welfare_duty",
                                                 reason="bekymring for omsorgssituasjonen"), at)
    case = stored(core, first.reference)
    (task,) = case.handovers
    assert (task.agency, task.basis, task.status) == ("child_welfare", "child_welfare_duty", "requested")
    assert case.consents == {}, "no consent was asked for or recorded"
    with core.engine.connect() as conn:
        (shown,) = agency_tasks(conn, agency="child_welfare", catalog=core.catalog, keys=core.keys)
    # A task on a legal basis shares no consent scope (``shareable``): the agency calls the coordinator.
    assert shown.person_name is None and shown.safe_contact is None and shown.basis == "child_welfare_duty"
    assert PERSON.address not in repr(shown) and "Testbarn" not in repr(shown)


def test_a_childs_pathway_has_the_adults_access_rules(core: Forlop, family: tuple[Case, Case, Case]) -> None:
    adult, first, _ = family
    now = TUESDAY + timedelta(hours=5)
    def user(name: str, role: str, unit: str | None = None, agency: str | None = None) -> User:
        return User(id=uuid.uuid4(), username=name, role=role, unit=unit, agency=agency, language="nb")

    own, other = user("koordinator", "coordinator", adult.unit), user("annen", "coordinator", "annenenhet")
    partner = user("politi", "partner", agency="police")
    with core.engine.connect() as conn:
        assert policy.case_access(conn, own, first.reference, now=now).write
        assert not policy.case_access(conn, other, first.reference, now=now).allowed
        assert not policy.case_access(conn, partner, first.reference, now=now).allowed
        # Emergency access is asked for the case named: a grant on a child's pathway covers only it.
        assert policy.break_glass_case(conn, other, first.reference) == first.id


def test_the_childs_record_is_encrypted_and_a_child_has_no_pathways_of_its_own(
        core: Forlop, family: tuple[Case, Case, Case]) -> None:
    _, first, _ = family
    with core.engine.connect() as conn:
        blob = conn.execute(sa.select(child_t.c.ciphertext).where(child_t.c.case_id == first.id)).scalar_one()
    assert b"Testbarn" not in blob and b"Fiktiv" not in blob and b"2017" not in blob
    with pytest.raises(InvalidArgument):
        add_child(core, first.reference, ASTRID, at=TUESDAY + timedelta(hours=6))
