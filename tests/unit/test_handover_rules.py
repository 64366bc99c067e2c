"""Handovers as the definition has them: agencies and legal bases are data, a checkpoint may name several agencies,
a task carries the coordinator's note and the case's threat level, high risk is the same day for the police, and a
task keeps who answered it. Events of before replay to the state they recorded."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from pathway.calendar import OSLO, end_of_day
from pathway.case import Case, replay
from pathway.case import commands as do
from pathway.definition import PathwayDefinition, parse_definition
from pathway.errors import DefinitionError, InvalidArgument, OperationNotAllowed

from tests.unit.conftest import VERSION_LINE, OpenCase
from tests.unit.test_cases import ACTOR, POLICE_SCOPE, resolver, step, to_support

def _hand_over_to_police(case: Case, at: datetime, **kwargs: object) -> None:
    case.execute(do.RecordConsent("police", tuple(POLICE_SCOPE)), actor=ACTOR, at=at)
    case.execute(do.CreateHandover("K6", **kwargs), actor=ACTOR, at=at)  # type: ignore[arg-type]


# -- the same day at high risk ----------------------------------------------------------------------------------


def test_at_high_risk_the_police_task_is_due_the_end_of_the_day_it_was_sent(case: Case, start: datetime) -> None:
    at = start + timedelta(hours=2)
    case.execute(do.RecordRisk("high"), actor=ACTOR, at=at)
    _hand_over_to_police(case, at, note="Ring før kl. 15")
    task = case.handovers[0]
    last_minute = datetime(2026, 11, 23, 23, 59, tzinfo=OSLO)  # start is a Monday morning in Oslo
    assert (task.urgency, task.note) == ("high", "Ring før kl. 15")
    assert task.due_at == step(case, "K6").due_at == last_minute
    assert step(case, "K6").due_at < case.due(case.definition.checkpoint["K6"], at), "shorter than a working day"


@pytest.mark.parametrize("level", ["low", "medium", None])
def test_below_high_risk_the_police_task_keeps_its_working_day(case: Case, start: datetime,
                                                                level: str | None) -> None:
    at = start + timedelta(hours=2)
    if level is not None:
        case.execute(do.RecordRisk(level), actor=ACTOR, at=at)
    _hand_over_to_police(case, at)
    assert case.handovers[0].urgency == level
    assert case.handovers[0].due_at == case.due(case.definition.checkpoint["K6"], at)


@pytest.mark.parametrize("wall", [(2026, 3, 29, 1, 30), (2026, 10, 25, 2, 30), (2028, 2, 29, 23, 59),
                                  (2026, 12, 31, 12, 0)])
def test_the_end_of_the_day_is_its_last_minute_in_oslo_on_any_day(wall: tuple[int, ...]) -> None:
    at = datetime(*wall, tzinfo=OSLO)
    end = end_of_day(at)
    assert end >= at and (end.astimezone(OSLO).hour, end.astimezone(OSLO).minute) == (23, 59)
    assert end.astimezone(OSLO).date() == at.date()


def test_a_second_consent_moves_the_deadline_but_not_past_the_same_day(case: Case, start: datetime) -> None:
    at = start + timedelta(hours=2)
    case.execute(do.RecordRisk("high"), actor=ACTOR, at=at)
    _hand_over_to_police(case, at)
    due = case.handovers[0].due_at
    case.execute(do.RecordConsent("police", (), given=False), actor=ACTOR, at=at + timedelta(hours=1))
    case.execute(do.RecordConsent("police", tuple(POLICE_SCOPE)), actor=ACTOR, at=at + timedelta(hours=2))
    case.execute(do.CreateHandover("K6"), actor=ACTOR, at=at + timedelta(hours=2))
    assert case.handovers[-1].due_at == due, "still the end of that day, not a working day after the new consent"


# -- several agencies, one task at a time ----------------------------------------------------------------------


def test_k9_goes_to_nav_or_the_housing_office_and_the_agency_must_be_chosen(case: Case, start: datetime) -> None:
    to_support(case, lambda n: start + timedelta(hours=n))
    at = start + timedelta(hours=3)
    case.execute(do.RecordConsent("housing", ("name", "contact", "finances")), actor=ACTOR, at=at)
    with pytest.raises(InvalidArgument, match="agency"):
        case.execute(do.CreateHandover("K9"), actor=ACTOR, at=at)
    with pytest.raises(InvalidArgument, match="agency"):
        case.execute(do.CreateHandover("K9", agency="police"), actor=ACTOR, at=at)
    case.execute(do.CreateHandover("K9", agency="housing"), actor=ACTOR, at=at)
    assert case.handovers[-1].agency == "housing"
    with pytest.raises(OperationNotAllowed):  # one open task at a time
        case.execute(do.CreateHandover("K9", agency="nav"), actor=ACTOR, at=at)


def test_after_a_decline_another_agency_may_be_asked_and_the_task_keeps_who_answered(
        case: Case, start: datetime) -> None:
    to_support(case, lambda n: start + timedelta(hours=n))
    at = start + timedelta(hours=3)
    for agency in ("housing", "nav"):
        case.execute(do.RecordConsent(agency, ("name", "contact", "finances")), actor=ACTOR, at=at)
    case.execute(do.CreateHandover("K9", agency="housing"), actor=ACTOR, at=at)
    declined = case.handovers[-1]
    case.execute(do.UpdateHandover(declined.id, "declined", note="ingen ledige boliger"), actor="bolig",
                 at=at + timedelta(hours=1))
    assert (declined.status, declined.updated_by, declined.reply) == ("declined", "bolig", "ingen ledige boliger")
    case.execute(do.CreateHandover("K9", agency="nav"), actor=ACTOR, at=at + timedelta(hours=2))
    nav = case.handovers[-1]
    case.execute(do.UpdateHandover(nav.id, "completed", note="midlertidig bolig"), actor="nav",
                 at=at + timedelta(hours=3))
    assert step(case, "K9").state == "done" and (nav.updated_by, nav.reply) == ("nav", "midlertidig bolig")


# -- legal bases are the definition's ---------------------------------------------------------------------------


def test_child_welfare_is_told_on_opplysningsplikt_without_consent_and_only_with_a_reason(
        open_child_case: OpenCase, start: datetime) -> None:
    """On the child's own pathway (B2; the adult's K5 only maps the children): the duty to inform child welfare goes
    without consent, never on another agency's basis, and always with its reason in the record."""
    case = open_child_case()
    at = start + timedelta(hours=1)
    with pytest.raises(InvalidArgument, match="reason"):
        case.execute(do.CreateHandover("B2", legal_basis="child_welfare_duty"), actor=ACTOR, at=at)
    with pytest.raises(InvalidArgument, match="legal_basis"):
        case.execute(do.CreateHandover("B2", legal_basis="avert_crime", reason="bekymring"), actor=ACTOR, at=at)
    case.execute(do.CreateHandover("B2", legal_basis="child_welfare_duty", reason="bekymring for barnet"),
                 actor=ACTOR, at=at)
    task = case.handovers[-1]
    assert (task.agency, task.basis, task.scope) == ("child_welfare", "child_welfare_duty", ())
    assert case.new_events[-1].reason == "bekymring for barnet"


def test_a_legal_basis_added_in_the_definition_needs_no_code(shipped_text: str, start: datetime) -> None:
    text = shipped_text.replace("\nlegal_bases:\n", "\nlegal_bases:\n  health_duty: {nb: Opplysningsplikt til helse, "
                                "en: Duty to inform health, law: test § 1}\n", 1)
    text = text.replace("scopes: [name, contact, situation, threat_assessment]}",
                        "scopes: [name, contact, situation, threat_assessment], legal_bases: [health_duty]}", 1)
    definition = parse_definition(text.replace(VERSION_LINE, "version: 90\n", 1))
    assert definition.legal_bases_for("health") == ("health_duty",)
    case = Case.open(definition, case_id=uuid.UUID(int=9), reference="VIR-2026-0009", unit="bergen",
                     first_contact_at=start, actor=ACTOR, at=start, conditions=["other_services"])
    case.execute(do.CreateHandover("K14", agency="health", legal_basis="health_duty", reason="akutt"), actor=ACTOR,
                 at=start + timedelta(hours=1))
    assert case.handovers[-1].basis == "health_duty"


def test_an_unknown_legal_basis_or_a_scope_an_agency_may_not_receive_is_a_definition_error(
        shipped_text: str) -> None:
    text = shipped_text.replace("legal_bases: [avert_crime]}", "legal_bases: [gut_feeling]}", 1)
    with pytest.raises(DefinitionError, match="unknown legal basis 'gut_feeling'"):
        parse_definition(text)
    text = shipped_text.replace("correctional_service: {nb: Kriminalomsorgen, en: Correctional service, "
                                "scopes: [name, contact, threat_assessment]}",
                                "correctional_service: {nb: Kriminalomsorgen, en: Correctional service, "
                                "scopes: [name]}", 1)
    with pytest.raises(DefinitionError, match="may not receive 'contact'"):
        parse_definition(text)


def test_a_definition_registered_before_legal_bases_were_data_keeps_the_two_it_had(shipped_text: str) -> None:
    head, _, rest = shipped_text.partition("\nagencies:\n")
    _, _, rest = rest.partition("\nconsent_scopes:")
    old = parse_definition(head.replace(VERSION_LINE, "version: 1\n") +
                           "\nagencies:\n  police: {nb: Politiet, en: Police}\n  nav: {nb: NAV, en: NAV}\n"
                           "  child_welfare: {nb: Barnevernet, en: Child welfare}\n"
                           "  health: {nb: Helse, en: Health}\n  housing: {nb: Bolig, en: Housing}\n"
                           "  correctional_service: {nb: Kriminalomsorgen, en: Correctional service}\n"
                           "\nconsent_scopes:" + rest)
    assert old.legal_bases_for("police") == ("avert_crime",)
    assert old.legal_bases_for("child_welfare") == ("child_welfare_duty",)
    assert old.legal_bases_for("nav") == ()


# -- the record ------------------------------------------------------------------------------------------------


def test_the_new_facts_replay_and_a_case_without_them_hashes_as_before(case: Case, start: datetime,
                                                                      definition: PathwayDefinition) -> None:
    plain = case.snapshot()
    assert "risk" not in plain and all(len(t) == 10 for t in plain["handovers"])
    at = start + timedelta(hours=2)
    case.execute(do.RecordRisk("medium"), actor=ACTOR, at=at)
    _hand_over_to_police(case, at, note="Ring før kl. 15")
    case.execute(do.UpdateHandover(case.handovers[0].id, "accepted"), actor="politi", at=at + timedelta(hours=1))
    snapshot = case.snapshot()
    assert snapshot["risk"] == "medium"
    assert snapshot["handovers"][0][10] == {"note": "Ring før kl. 15", "urgency": "medium", "updated_by": "politi"}
    assert replay(case.new_events, resolver(definition)).snapshot() == snapshot


def test_an_answer_recorded_before_tasks_kept_who_answered_replays_without_it(case: Case, start: datetime,
                                                                               definition: PathwayDefinition) -> None:
    at = start + timedelta(hours=2)
    _hand_over_to_police(case, at)
    case.execute(do.UpdateHandover(case.handovers[0].id, "accepted", keeps_answer=None), actor="politi",
                 at=at + timedelta(hours=1))
    assert "keeps_answer" not in case.new_events[-1].payload
    assert case.handovers[0].updated_by is None and len(case.snapshot()["handovers"][0]) == 10
    assert replay(case.new_events, resolver(definition)).snapshot() == case.snapshot()


def test_a_definition_in_todays_form_that_names_no_legal_bases_has_none(shipped_text: str) -> None:
    head, _, rest = shipped_text.partition("\nlegal_bases:\n")
    _, _, rest = rest.partition("\nconsent_scopes:")
    text = (head + "\nconsent_scopes:" + rest).replace("legal_bases: [avert_crime]", "legal_bases: []", 1)
    text = text.replace("legal_bases: [child_welfare_duty]", "legal_bases: []", 1)
    definition = parse_definition(text)
    assert not definition.legal_bases and all(not definition.legal_bases_for(a) for a in definition.agencies)


@pytest.mark.parametrize(("basis", "consent", "status", "shown"), [
    ("consent", ("name",), "requested", True), ("consent", None, "requested", False),
    ("consent", ("name",), "completed", False), ("avert_crime", None, "accepted", True),
    ("avert_crime", None, "declined", False)])
def test_the_coordinators_note_is_shown_while_the_task_is_open_and_its_basis_holds(
        basis: str, consent: tuple[str, ...] | None, status: str, shown: bool) -> None:
    from pathway.policy import task_fields

    assert task_fields(("name",), basis, consent, status).note is shown


def test_a_changed_threat_level_says_why_and_the_first_does_not_need_to(case: Case, start: datetime) -> None:
    at = start + timedelta(hours=1)
    case.execute(do.RecordRisk("high"), actor=ACTOR, at=at)
    with pytest.raises(InvalidArgument, match="reason"):
        case.execute(do.RecordRisk("low"), actor=ACTOR, at=at)
    case.execute(do.RecordRisk("low", reason="ny vurdering etter besøksforbud"), actor=ACTOR, at=at)
    case.execute(do.RecordRisk("low"), actor=ACTOR, at=at)  # the same level again changes nothing to explain
    assert case.risk == "low"
