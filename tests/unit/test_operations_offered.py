"""What the case page offers is what the engine allows: over cases in every phase and state (fresh, with children,
consent given, handed over, paused, after the stay, closed), every form the page would offer succeeds when its
command runs with valid input, and every one it would not offer is refused by the command itself."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest

from pathway.case import Case
from pathway.case.commands import (
    AddStep, Advance, AssignCoordinator, Close, Command, CompleteStep, CreateHandover, Pause, RecordConsent,
    RecordMilestone, RecordRisk, Resume, SetCondition, SkipStep, Transfer,
)
from pathway.errors import DomainError
from pathway.views.offers import CONSENT, CONSENT_NOW, HandoverOffer, offers
from tests.unit.conftest import OpenCase

REASON = "syntetisk begrunnelse"
Build = Callable[[], Case]


def cases(open_case: OpenCase, start: datetime) -> Iterator[tuple[str, Case]]:
    """Cases along the pathway, each a step further than the one before (and some beside it)."""
    at = iter(start + timedelta(minutes=10 * i) for i in range(1, 200))
    case = open_case()

    def run(*commands: Command) -> Case:
        for command in commands:
            case.execute(command, actor="koordinator", at=next(at))
        return copy.deepcopy(case)

    yield "opened", copy.deepcopy(case)
    yield "with children", open_case(conditions=["children", "shelter_stay"])
    yield "K1 done", run(CompleteStep(code="K1", note="kartlagt"))
    yield "coordinator", run(AssignCoordinator(coordinator="koordinator"))
    yield "paused", run(Pause(reason=REASON))
    yield "resumed", run(Resume())
    yield "consent to the police", run(RecordConsent(agency="police", scope=("name", "contact", "threat_assessment")))
    yield "handed over to the police", run(CreateHandover(code="K6"))
    yield "K2 done", run(CompleteStep(code="K2"))
    yield "in support", run(Advance(trigger="start_support"))
    yield "after the stay", run(Advance(trigger="move_out"))
    yield "closed", run(Close(outcome="safe_housing"))


def valid(case: Case, form: str, at: datetime) -> list[Command]:
    """The commands a form posts with valid input (as a coordinator fills it in)."""
    d = case.definition
    condition = next(iter(d.conditions))
    forms: dict[str, list[Command]] = {
        "pause": [Pause(reason=REASON)],
        "resume": [Resume()],
        "consent": [RecordConsent(agency="nav", scope=("name",))],
        "coordinator": [AssignCoordinator(coordinator="koordinator2", reason=REASON)],
        "risk": [RecordRisk(level="high", reason=REASON)],
        "condition": [SetCondition(name=condition, value=condition not in case.conditions, reason=REASON)],
        "milestone": [RecordMilestone(name="move_out_planned", when=at + timedelta(days=20))],
        "add_step": [AddStep(title="Følge til fastlege", owner="coordinator", due_at=at + timedelta(days=3),
                             reason=REASON)],
        "close": [Close(outcome="safe_housing", reason=REASON)],
        "transfer": [Transfer(municipality="Testkommune", reason=REASON)],
    }
    return forms[form]


def outcome(case: Case, commands: list[Command], at: datetime) -> DomainError | None:
    """Run the commands on a copy of the case: None if the engine takes them, else its refusal."""
    trial = copy.deepcopy(case)
    try:
        for command in commands:
            trial.execute(command, actor="koordinator", at=at)
    except DomainError as exc:
        return exc
    return None


def handover_asks(case: Case, handovers: list[HandoverOffer]) -> list[tuple[str, bool, list[Command]]]:
    """For each handover the page shows, each way to send it: whether it is offered, and the commands it posts."""
    asked: list[tuple[str, bool, list[Command]]] = []
    for h in handovers:
        checkpoint = case.definition.checkpoint[h.code]
        assert checkpoint.handover is not None
        to = h.agency if h.chosen else None  # the form names the agency where the checkpoint has several
        asked.append((f"{h.code} to {h.agency} on consent now", CONSENT_NOW in h.bases,
                      [RecordConsent(agency=h.agency, scope=h.scope), CreateHandover(code=h.code, agency=to)]))
        asked.append((f"{h.code} to {h.agency} on consent", CONSENT in h.bases,
                      [CreateHandover(code=h.code, agency=to)]))
        for basis in ("avert_crime", "child_welfare_duty"):
            asked.append((f"{h.code} to {h.agency} on {basis}", basis in h.bases,
                          [CreateHandover(code=h.code, agency=to, legal_basis=basis, reason=REASON)]))
    return asked


def mismatches(name: str, case: Case, asked: list[tuple[str, bool, list[Command]]], at: datetime) -> list[str]:
    """Where the page and the engine disagree: offered but refused, or not offered but taken."""
    wrong = []
    for what, allowed, commands in asked:
        refused = outcome(case, commands, at)
        if allowed and refused is not None:
            wrong.append(f"{name}: {what} is offered but refused: {refused}")
        if not allowed and refused is None:
            wrong.append(f"{name}: {what} is not offered but the engine takes it")
    return wrong


@pytest.fixture
def built(open_case: OpenCase, start: datetime) -> list[tuple[str, Case]]:
    return list(cases(open_case, start))


def test_the_cases_cover_every_phase(built: list[tuple[str, Case]]) -> None:
    assert {case.phase for _, case in built} == {"intake", "support", "after_stay", "closed"}


def test_every_form_offered_succeeds_and_every_one_not_offered_is_refused(built: list[tuple[str, Case]],
                                                                         start: datetime) -> None:
    wrong = []
    for name, case in built:
        at = case.recorded_until() + timedelta(minutes=1)
        offered = offers(case, at=at)
        asked: list[tuple[str, bool, list[Command]]] = []
        for form, o in offered.forms.items():
            asked.append((form, o.allowed, valid(case, form, at)))
        for code, by_operation in offered.steps.items():
            asked.append((f"complete {code}", by_operation["complete"].allowed, [CompleteStep(code=code, note=REASON)]))
            asked.append((f"skip {code}", by_operation["skip"].allowed, [SkipStep(code=code, reason=REASON)]))
        for move in offered.moves:
            asked.append((f"advance {move.trigger}", move.offer.allowed, [Advance(trigger=move.trigger, reason=REASON)]))
        asked += handover_asks(case, offered.handovers)
        wrong += mismatches(name, case, asked, at)
    assert not wrong, "\n".join(wrong)


def test_steps_done_by_another_operation_or_not_skippable_are_not_offered(built: list[tuple[str, Case]]) -> None:
    case = dict(built)["opened"]
    steps = offers(case, at=case.recorded_until()).steps
    for code, by in (("K3", "assign_coordinator"), ("K4", "consent"), ("K6", "handover"), ("K7", "handover"),
                     ("K13", "close")):
        refusal = steps[code]["complete"].refusal
        assert refusal is not None and refusal.code == "completed_by" and refusal.params["by"] == by, code
    assert steps["K13"]["skip"].refusal is not None and steps["K13"]["skip"].refusal.code == "not_skippable"
    assert steps["K1"]["complete"].allowed and steps["K1"]["skip"].allowed


def test_the_police_handover_offers_consent_now_and_the_duty_to_avert_a_crime_never_the_child_welfare_duty(
        built: list[tuple[str, Case]]) -> None:
    case = dict(built)["K1 done"]
    by_code = {h.code: h for h in offers(case, at=case.recorded_until()).handovers}
    police, nav = by_code["K6"], by_code["K7"]
    assert list(police.bases) == [CONSENT_NOW, "avert_crime"]  # no consent yet; no duty to inform child welfare
    assert police.scope == ("name", "contact", "threat_assessment")  # pre-ticked: what the checkpoint needs
    assert list(nav.bases) == [CONSENT_NOW]  # no legal basis reaches NAV


def test_a_handover_with_an_open_task_is_shown_refused_with_its_reason(built: list[tuple[str, Case]]) -> None:
    case = dict(built)["handed over to the police"]
    police = next(h for h in offers(case, at=case.recorded_until()).handovers if h.code == "K6")
    assert not police.allowed and police.refusal is not None and police.refusal.code == "handover_open"


def test_closing_says_a_reason_is_required_exactly_where_the_engine_requires_one(
        built: list[tuple[str, Case]]) -> None:
    for name, case in built:
        if case.is_closed:
            continue
        at = case.recorded_until() + timedelta(minutes=1)
        required = offers(case, at=at).forms["close"].reason_required
        without = outcome(case, [Close(outcome="safe_housing")], at)
        assert required == (without is not None), name
    assert not offers(dict(built)["after the stay"], at=dict(built)["after the stay"].recorded_until()) \
        .forms["close"].reason_required  # the pathway's own way to closure: no reason needed
    assert offers(dict(built)["opened"], at=dict(built)["opened"].recorded_until()).forms["close"].reason_required


def test_the_step_waiting_for_consent_says_what_it_waits_for(built: list[tuple[str, Case]]) -> None:
    case = dict(built)["coordinator"]
    with pytest.raises(DomainError) as refused:
        copy.deepcopy(case).execute(CreateHandover(code="K6"), actor="koordinator", at=case.recorded_until())
    assert refused.value.refusal.code == "consent_missing"  # type: ignore[attr-defined]


def test_k9_offers_nav_and_the_housing_office_each_on_its_own_and_one_open_task_refuses_both(
        built: list[tuple[str, Case]]) -> None:
    case = dict(built)["in support"]
    k9 = [h for h in offers(case, at=case.recorded_until()).handovers if h.code == "K9"]
    assert [(h.agency, h.chosen, list(h.bases)) for h in k9] == [("nav", True, [CONSENT_NOW]),
                                                                  ("housing", True, [CONSENT_NOW])]
    at = case.recorded_until() + timedelta(minutes=1)
    case.execute(RecordConsent(agency="housing", scope=("name", "contact", "finances")), actor="koordinator", at=at)
    case.execute(CreateHandover(code="K9", agency="housing", note="Ring før kl. 15"), actor="koordinator", at=at)
    task = next(t for t in case.handovers if t.code == "K9")
    assert (task.agency, task.note) == ("housing", "Ring før kl. 15")
    k9 = [h for h in offers(case, at=at).handovers if h.code == "K9"]
    assert [(h.agency, h.refusal.code if h.refusal else None) for h in k9] == [("nav", "handover_open"),
                                                                               ("housing", "handover_open")]


def test_child_welfare_is_offered_its_duty_to_inform_with_a_reason_required_on_the_childs_pathway(
        built: list[tuple[str, Case]], open_child_case: OpenCase) -> None:
    """The child-welfare notice is assessed and sent on each child's own pathway (B2), no longer on the adult's K5,
    which only maps the children: the duty to inform is offered there without consent, with a reason required."""
    adult = dict(built)["with children"]
    assert "K5" in offers(adult, at=adult.recorded_until()).steps
    assert all(h.code != "K5" and h.agency != "child_welfare"
               for h in offers(adult, at=adult.recorded_until()).handovers)
    case = open_child_case()
    at = case.recorded_until()
    offered = offers(case, at=at).handovers
    b2 = next(h for h in offered if h.code == "B2")
    assert (b2.agency, b2.chosen, b2.legal) == ("child_welfare", False, True)
    assert "child_welfare_duty" in b2.bases and b2.bases["child_welfare_duty"].reason_required
    assert "avert_crime" not in b2.bases  # the child's pathway names no duty to avert a crime
    assert outcome(case, [CreateHandover(code="B2", legal_basis="child_welfare_duty")], at)
    assert outcome(case, [CreateHandover(code="B2", legal_basis="child_welfare_duty", reason=REASON)], at) is None
    assert not mismatches("child's pathway", case, handover_asks(case, offered), at)
