"""The case aggregate: the rules of the pathway, the individual adaptations, consent, and the event chain."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pathway.calendar import OSLO
from pathway.case import GENESIS, Case, Event, Step, event_hash, replay
from pathway.case import commands as do
from pathway.definition import PathwayDefinition, load_definition, parse_definition
from pathway.errors import (
    ConsentRequired,
    DomainError,
    InvalidArgument,
    OperationNotAllowed,
    UnknownCheckpoint,
)

Hours = Callable[[float], datetime]
ACTOR = "coordinator-1"
POLICE_SCOPE = ["name", "contact", "threat_assessment"]


def step(case: Case, code: str, occurrence: int | None = None) -> Step:
    """The latest occurrence of ``code`` (or the given one)."""
    found = [s for s in case.steps if s.code == code and (occurrence is None or s.occurrence == occurrence)]
    assert found, f"no step {code} in {[(s.code, s.occurrence) for s in case.steps]}"
    return max(found, key=lambda s: s.occurrence)


def codes(case: Case, *states: str) -> set[str]:
    return {s.code for s in case.steps if s.state in states}


def oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO)


def to_support(case: Case, hours: Hours, at: float = 1) -> None:
    case.execute(do.CompleteStep("K1"), actor=ACTOR, at=hours(at))
    case.execute(do.CompleteStep("K2"), actor=ACTOR, at=hours(at))
    case.execute(do.Advance("start_support"), actor=ACTOR, at=hours(at + 0.5))


def to_after_stay(case: Case, hours: Hours, at: float = 1) -> None:
    to_support(case, hours, at)
    case.execute(do.Advance("move_out"), actor=ACTOR, at=hours(at + 1))


def resolver(definition: PathwayDefinition) -> Callable[[str, int], PathwayDefinition]:
    def resolve(pathway_id: str, version: int) -> PathwayDefinition:
        assert (pathway_id, version) == definition.key
        return definition

    return resolve


# -- opening ------------------------------------------------------------------------------------------------


def test_opening_completes_k0_and_activates_the_intake_checkpoints(case: Case, start: datetime) -> None:
    assert case.phase == "intake"
    assert step(case, "K0").state == "done" and step(case, "K0").ended_at == start
    assert codes(case, "active") == {"K1", "K2", "K3", "K4", "K12", "K13"}
    assert "K5" not in {s.code for s in case.steps}, "K5 applies only when children are part of the case"
    assert not {"K8", "K9", "K10", "K11"} & {s.code for s in case.steps}, "later stages have not begun"


def test_opening_sets_deadlines_of_24_hours_and_2_working_days(case: Case, start: datetime) -> None:
    assert step(case, "K1").due_at == start + timedelta(hours=24)
    assert step(case, "K2").due_at == start + timedelta(hours=24)
    # Monday 09:00 + 2 working days = Wednesday 09:00 (Oslo).
    assert step(case, "K3").due_at == oslo(2026, 11, 25, 9, 0)
    assert step(case, "K4").due_at == oslo(2026, 11, 25, 9, 0)
    assert step(case, "K12").due_at == oslo(2026, 12, 21, 9, 0)
    assert step(case, "K13").due_at is None
    assert case.next_deadline() == start + timedelta(hours=24)


def test_first_contact_on_friday_morning_gives_a_coordinator_deadline_on_tuesday(open_case: Callable[..., Case]) -> None:
    friday = oslo(2026, 11, 27, 10, 0)
    case = open_case(first_contact_at=friday, at=friday)
    assert step(case, "K1").due_at == oslo(2026, 11, 28, 10, 0)  # 24 h is 24 h, even on a Saturday
    assert step(case, "K3").due_at == oslo(2026, 12, 1, 10, 0)
    assert step(case, "K3").due_at.astimezone(OSLO).strftime("%A %H:%M") == "Tuesday 10:00"


def test_opening_records_one_event_starting_the_chain(case: Case, start: datetime) -> None:
    (event,) = case.new_events
    assert (event.operation, event.seq, event.prev_hash, event.actor) == ("open", 1, GENESIS, ACTOR)
    assert event.payload["first_contact_at"] == start.isoformat()
    assert case.version == 1 and case.head_hash == event.hash


def test_backdating_first_contact_more_than_an_hour_needs_a_reason(
    open_case: Callable[..., Case], start: datetime
) -> None:
    two_hours_ago = start - timedelta(hours=2)
    with pytest.raises(InvalidArgument) as caught:
        open_case(first_contact_at=two_hours_ago, at=start)
    assert caught.value.field == "reason"
    case = open_case(first_contact_at=two_hours_ago, at=start, reason="registered after a night call")
    assert case.opened_at == two_hours_ago
    assert step(case, "K1").due_at == two_hours_ago + timedelta(hours=24), "the clock starts at first contact"
    assert case.new_events[0].reason == "registered after a night call"


def test_a_first_contact_within_the_hour_needs_no_reason(open_case: Callable[..., Case], start: datetime) -> None:
    case = open_case(first_contact_at=start - timedelta(minutes=59), at=start)
    assert case.new_events[0].reason is None


def test_a_first_contact_in_the_future_is_refused(open_case: Callable[..., Case], start: datetime) -> None:
    with pytest.raises(InvalidArgument):
        open_case(first_contact_at=start + timedelta(hours=2), at=start, reason="typo")


def test_a_naive_timestamp_is_refused(open_case: Callable[..., Case]) -> None:
    with pytest.raises(InvalidArgument):
        open_case(first_contact_at=datetime(2026, 11, 23, 9, 0), at=datetime(2026, 11, 23, 9, 0))


def test_opening_with_an_unknown_condition_is_refused(open_case: Callable[..., Case]) -> None:
    with pytest.raises(InvalidArgument):
        open_case(conditions=["pets"])


# -- conditions -----------------------------------------------------------------------------------------------


def test_k5_applies_when_children_are_part_of_the_case(open_case: Callable[..., Case]) -> None:
    case = open_case(conditions=["children"])
    assert step(case, "K5").state == "active"
    assert step(case, "K5").due_at == oslo(2026, 11, 24, 9, 0)  # 1 working day after Monday 09:00


def test_k5_appears_when_children_turn_out_to_be_part_of_the_case(case: Case, hours: Hours) -> None:
    case.execute(do.SetCondition("children", True, reason="the person has two children"), actor=ACTOR, at=hours(3))
    k5 = step(case, "K5")
    assert k5.state == "active" and k5.created_at == hours(3)
    assert k5.due_at == oslo(2026, 11, 24, 9, 0), "the deadline is still counted from first contact"
    assert case.new_events[-1].operation == "set_condition"


def test_unsetting_the_children_condition_cancels_k5_and_setting_it_again_brings_it_back(
    open_case: Callable[..., Case], hours: Hours
) -> None:
    case = open_case(conditions=["children"])
    case.execute(do.SetCondition("children", False, reason="registered by mistake"), actor=ACTOR, at=hours(1))
    assert step(case, "K5").state == "cancelled"
    case.execute(do.SetCondition("children", True, reason="children after all"), actor=ACTOR, at=hours(2))
    assert step(case, "K5").occurrence == 2 and step(case, "K5").state == "active"


def test_setting_a_condition_needs_a_reason_and_a_change(case: Case, hours: Hours) -> None:
    with pytest.raises(InvalidArgument):
        case.execute(do.SetCondition("children", True, reason=" "), actor=ACTOR, at=hours(1))
    with pytest.raises(InvalidArgument):
        case.execute(do.SetCondition("children", False, reason="not set"), actor=ACTOR, at=hours(1))


# -- completing and skipping ----------------------------------------------------------------------------------


def test_completing_a_checkpoint_marks_it_done_with_author_and_time(case: Case, hours: Hours) -> None:
    case.execute(do.CompleteStep("K1", note="mapping done"), actor="staff-7", at=hours(2))
    k1 = step(case, "K1")
    assert (k1.state, k1.ended_at, k1.ended_by) == ("done", hours(2), "staff-7")
    assert case.new_events[-1].payload == {"code": "K1", "note": "mapping done"}


def test_completing_k6_by_hand_is_refused(case: Case, hours: Hours) -> None:
    to_support(case, hours)
    with pytest.raises(OperationNotAllowed) as caught:
        case.execute(do.CompleteStep("K6"), actor=ACTOR, at=hours(3))
    assert "handover" in str(caught.value)


def test_skipping_needs_a_reason_and_k13_cannot_be_skipped(case: Case, hours: Hours) -> None:
    with pytest.raises(InvalidArgument):
        case.execute(do.SkipStep("K12", reason=""), actor=ACTOR, at=hours(1))
    with pytest.raises(OperationNotAllowed):
        case.execute(do.SkipStep("K13", reason="no"), actor=ACTOR, at=hours(1))
    case.execute(do.SkipStep("K2", reason="has a safe place to stay with family"), actor=ACTOR, at=hours(1))
    assert step(case, "K2").state == "skipped"
    assert case.new_events[-1].reason == "has a safe place to stay with family"


def test_an_ad_hoc_step_gets_its_own_deadline_and_can_be_completed(case: Case, hours: Hours) -> None:
    code = case.execute(do.AddStep(title="Follow up with the GP", owner="coordinator", due_at=hours(48), reason="asked for by the person"), actor=ACTOR, at=hours(1))
    assert code == "A1"
    assert (step(case, "A1").state, step(case, "A1").due_at) == ("active", hours(48))
    case.execute(do.CompleteStep("A1"), actor=ACTOR, at=hours(2))
    assert step(case, "A1").state == "done"
    assert case.execute(do.AddStep(title="Second", owner="police", due_at=hours(50), reason="r"), actor=ACTOR, at=hours(3)) == "A2"


# -- consent and handovers ------------------------------------------------------------------------------------


def test_a_handover_without_consent_is_refused_naming_the_agency(case: Case, hours: Hours) -> None:
    to_support(case, hours)
    with pytest.raises(ConsentRequired) as caught:
        case.execute(do.CreateHandover("K6"), actor=ACTOR, at=hours(3))
    assert caught.value.agency == "police"
    assert caught.value.missing_scope == POLICE_SCOPE
    assert "'police'" in str(caught.value)
    assert case.handovers == []


def test_a_consent_that_does_not_cover_the_scope_is_not_enough(case: Case, hours: Hours) -> None:
    to_support(case, hours)
    case.execute(do.RecordConsent("police", scope=["name", "contact"], given=True), actor=ACTOR, at=hours(3))
    with pytest.raises(ConsentRequired) as caught:
        case.execute(do.CreateHandover("K6"), actor=ACTOR, at=hours(4))
    assert caught.value.missing_scope == ["threat_assessment"]


def test_a_consent_for_another_agency_is_not_enough(case: Case, hours: Hours) -> None:
    to_support(case, hours)
    case.execute(do.RecordConsent("nav", scope=POLICE_SCOPE + ["finances"], given=True), actor=ACTOR, at=hours(3))
    with pytest.raises(ConsentRequired) as caught:
        case.execute(do.CreateHandover("K6"), actor=ACTOR, at=hours(4))
    assert caught.value.agency == "police"


def test_a_consent_covering_the_scope_creates_a_task_and_completing_it_completes_k6(
    case: Case, hours: Hours
) -> None:
    to_support(case, hours)
    case.execute(do.RecordConsent("police", scope=POLICE_SCOPE, given=True), actor=ACTOR, at=hours(3))
    assert step(case, "K4").state == "done", "recording consent completes K4"
    k6 = step(case, "K6")
    assert k6.state == "active"
    assert k6.due_at == hours(3) + timedelta(days=1), "1 working day after consent (Monday → Tuesday)"
    task_id = case.execute(do.CreateHandover("K6"), actor=ACTOR, at=hours(4))
    (task,) = case.handovers
    assert (task.id, task.agency, task.basis, task.status) == (task_id, "police", "consent", "requested")
    assert task.scope == tuple(POLICE_SCOPE) and task.due_at == k6.due_at
    case.execute(do.UpdateHandover(task_id, "accepted"), actor="police-contact", at=hours(5))
    assert step(case, "K6").state == "active"
    case.execute(do.UpdateHandover(task_id, "completed"), actor="police-contact", at=hours(6))
    assert task.status == "completed"
    assert (step(case, "K6").state, step(case, "K6").ended_by) == ("done", "police-contact")


def test_a_declined_handover_needs_a_note_and_leaves_k6_open(case: Case, hours: Hours) -> None:
    to_support(case, hours)
    case.execute(do.RecordConsent("police", scope=POLICE_SCOPE, given=True), actor=ACTOR, at=hours(3))
    task_id = case.execute(do.CreateHandover("K6"), actor=ACTOR, at=hours(4))
    with pytest.raises(InvalidArgument):
        case.execute(do.UpdateHandover(task_id, "declined"), actor="police-contact", at=hours(5))
    case.execute(do.UpdateHandover(task_id, "declined", note="wrong district"), actor="police-contact", at=hours(5))
    assert step(case, "K6").is_open
    assert case.execute(do.CreateHandover("K6"), actor=ACTOR, at=hours(6)) != task_id, "a new task may be sent"


def test_withdrawing_consent_cancels_open_tasks_and_refuses_later_handovers(case: Case, hours: Hours) -> None:
    to_support(case, hours)
    case.execute(do.RecordConsent("police", scope=POLICE_SCOPE, given=True), actor=ACTOR, at=hours(3))
    case.execute(do.CreateHandover("K6"), actor=ACTOR, at=hours(4))
    case.execute(do.RecordConsent("police", scope=[], given=False, reason="withdrawn by phone"), actor=ACTOR, at=hours(5))
    (task,) = case.handovers
    assert (task.status, task.updated_at) == ("cancelled", hours(5))
    with pytest.raises(ConsentRequired) as caught:
        case.execute(do.CreateHandover("K6"), actor=ACTOR, at=hours(6))
    assert caught.value.agency == "police"


def test_withdrawing_consent_leaves_a_task_sent_on_a_legal_basis(case: Case, hours: Hours) -> None:
    to_support(case, hours)
    case.execute(do.RecordConsent("police", scope=POLICE_SCOPE, given=True), actor=ACTOR, at=hours(3))
    case.execute(do.CreateHandover("K6", legal_basis="avert_crime", reason="threat to kill"), actor=ACTOR, at=hours(4))
    case.execute(do.RecordConsent("police", scope=[], given=False), actor=ACTOR, at=hours(5))
    assert case.handovers[0].status == "requested"


def test_consent_given_again_after_withdrawal_allows_handover_with_a_new_deadline(case: Case, hours: Hours) -> None:
    to_support(case, hours)
    case.execute(do.RecordConsent("police", scope=POLICE_SCOPE, given=True), actor=ACTOR, at=hours(3))
    case.execute(do.RecordConsent("police", scope=[], given=False), actor=ACTOR, at=hours(4))
    case.execute(do.RecordConsent("police", scope=POLICE_SCOPE, given=True), actor=ACTOR, at=hours(30))
    assert step(case, "K6").due_at == hours(30) + timedelta(days=1)
    case.execute(do.CreateHandover("K6"), actor=ACTOR, at=hours(31))
    assert case.handovers[-1].basis == "consent"


def test_the_duty_to_avert_crime_allows_a_police_handover_without_consent(case: Case, hours: Hours) -> None:
    to_support(case, hours)
    with pytest.raises(InvalidArgument) as caught:
        case.execute(do.CreateHandover("K6", legal_basis="avert_crime"), actor=ACTOR, at=hours(3))
    assert caught.value.field == "reason"
    case.execute(do.CreateHandover("K6", legal_basis="avert_crime", reason="threat to kill"), actor=ACTOR, at=hours(3))
    (task,) = case.handovers
    assert (task.agency, task.basis, task.scope) == ("police", "avert_crime", ())
    assert step(case, "K6").state == "active", "a legal basis does not wait for consent"
    assert step(case, "K6").due_at == hours(3) + timedelta(days=1)
    assert case.new_events[-1].reason == "threat to kill"


def test_the_duty_to_avert_crime_is_no_basis_for_nav(case: Case, hours: Hours) -> None:
    to_support(case, hours)
    with pytest.raises(InvalidArgument) as caught:
        case.execute(do.CreateHandover("K7", legal_basis="avert_crime", reason="threat"), actor=ACTOR, at=hours(3))
    assert caught.value.field == "legal_basis"
    with pytest.raises(InvalidArgument):
        case.execute(do.CreateHandover("K6", legal_basis="child_welfare_duty", reason="x"), actor=ACTOR, at=hours(3))
    assert case.handovers == []


def test_the_duty_to_inform_child_welfare_allows_a_handover_without_consent(
    shipped_text: str, hours: Hours, start: datetime
) -> None:
    # The shipped pathway has no child-welfare handover checkpoint; a municipality may add one.
    text = shipped_text.replace(
        "  - code: K13\n",
        "  - code: KB\n"
        "    name: {nb: Melding til barnevernet, en: Notice to child welfare}\n"
        "    phases: [intake, support]\n"
        "    owner: child_welfare\n"
        "    when: [children]\n"
        "    completed_by: handover\n"
        "    handover: {agency: child_welfare, scope: [name, children]}\n"
        "    deadline: {after: consent.child_welfare, working_days: 1}\n\n"
        "  - code: K13\n",
    )
    definition = parse_definition(text)
    case = Case.open(definition, case_id=uuid.UUID(int=7), reference="R", unit="bergen", first_contact_at=start,
                     actor=ACTOR, at=start, conditions=["children"])
    with pytest.raises(ConsentRequired):
        case.execute(do.CreateHandover("KB"), actor=ACTOR, at=hours(1))
    with pytest.raises(InvalidArgument):
        case.execute(do.CreateHandover("KB", legal_basis="avert_crime", reason="x"), actor=ACTOR, at=hours(1))
    case.execute(do.CreateHandover("KB", legal_basis="child_welfare_duty", reason="concern for child"), actor=ACTOR, at=hours(1))
    assert case.handovers[0].basis == "child_welfare_duty"


# -- pause and resume -----------------------------------------------------------------------------------------


def test_pause_then_resume_moves_every_open_deadline_by_exactly_the_paused_time(case: Case, hours: Hours) -> None:
    to_support(case, hours)
    case.execute(do.RecordConsent("police", scope=POLICE_SCOPE, given=True), actor=ACTOR, at=hours(2))
    case.execute(do.CreateHandover("K6"), actor=ACTOR, at=hours(2))
    before = {s.id: s.due_at for s in case.steps}
    open_before = {s.id for s in case.steps if s.is_open}
    case.execute(do.Pause(reason="in hospital"), actor=ACTOR, at=hours(3))
    assert case.paused_since == hours(3)
    case.execute(do.Resume(), actor=ACTOR, at=hours(3 + 50))
    paused = timedelta(hours=50)
    assert case.paused_since is None
    for s in case.steps:
        if s.id in open_before and before[s.id] is not None:
            assert s.due_at == before[s.id] + paused, s.code
        else:
            assert s.due_at == before[s.id], f"{s.code} is closed or has no deadline: unchanged"
    assert case.handovers[0].due_at == step(case, "K6").due_at, "the task follows its checkpoint"


def test_pausing_twice_is_refused(case: Case, hours: Hours) -> None:
    case.execute(do.Pause(reason="unreachable"), actor=ACTOR, at=hours(1))
    with pytest.raises(OperationNotAllowed) as caught:
        case.execute(do.Pause(reason="again"), actor=ACTOR, at=hours(2))
    assert "resume" in caught.value.allowed and "pause" not in caught.value.allowed


def test_resuming_a_running_clock_is_refused_and_pausing_needs_a_reason(case: Case, hours: Hours) -> None:
    with pytest.raises(OperationNotAllowed):
        case.execute(do.Resume(), actor=ACTOR, at=hours(1))
    with pytest.raises(InvalidArgument):
        case.execute(do.Pause(reason=""), actor=ACTOR, at=hours(1))


def test_resuming_before_the_pause_began_is_refused(case: Case, hours: Hours) -> None:
    case.execute(do.Pause(reason="unreachable"), actor=ACTOR, at=hours(5))
    with pytest.raises(InvalidArgument):
        case.execute(do.Resume(), actor=ACTOR, at=hours(4))


# -- phases -----------------------------------------------------------------------------------------------------


def test_a_transition_whose_requirements_are_open_is_refused_with_a_useful_message(case: Case, hours: Hours) -> None:
    case.execute(do.CompleteStep("K1"), actor=ACTOR, at=hours(1))
    with pytest.raises(OperationNotAllowed) as caught:
        case.execute(do.Advance("start_support"), actor=ACTOR, at=hours(2))
    error = caught.value
    assert error.phase == "intake" and "K2" in error.detail and "K1" not in error.detail
    assert "advance:start_support" in error.allowed and "complete" in error.allowed
    message = str(error)
    assert "K2" in message and "'intake'" in message and "allowed now: complete" in message


def test_a_skipped_requirement_counts_as_met(case: Case, hours: Hours) -> None:
    case.execute(do.CompleteStep("K1"), actor=ACTOR, at=hours(1))
    case.execute(do.SkipStep("K2", reason="staying with family"), actor=ACTOR, at=hours(1))
    case.execute(do.Advance("start_support"), actor=ACTOR, at=hours(2))
    assert case.phase == "support"


def test_entering_support_creates_its_checkpoints(case: Case, hours: Hours) -> None:
    to_support(case, hours)
    assert case.phase == "support"
    assert {s.code: s.state for s in case.steps if s.code in ("K6", "K7", "K8", "K9")} == {
        "K6": "pending", "K7": "pending", "K8": "pending", "K9": "active",
    }
    case.execute(do.AssignCoordinator("coord-2"), actor=ACTOR, at=hours(3))
    assert step(case, "K3").state == "done" and case.coordinator == "coord-2"
    assert step(case, "K8").state == "active"
    assert step(case, "K8").due_at == hours(3) + timedelta(days=14), "10 working days after K3"


def test_an_unknown_trigger_or_one_from_another_stage_is_refused(case: Case, hours: Hours) -> None:
    with pytest.raises(OperationNotAllowed):
        case.execute(do.Advance("teleport"), actor=ACTOR, at=hours(1))
    with pytest.raises(OperationNotAllowed):
        case.execute(do.Advance("move_out"), actor=ACTOR, at=hours(1))


def test_moving_out_records_the_milestone_and_starts_the_first_week_contact(case: Case, hours: Hours) -> None:
    to_after_stay(case, hours)
    assert case.phase == "after_stay" and case.milestones["moved_out"] == hours(2)
    assert step(case, "K11").due_at == hours(2) + timedelta(days=7)


def test_returning_to_an_earlier_stage_needs_a_reason_and_reopens_k1_and_k2(case: Case, hours: Hours) -> None:
    to_support(case, hours)
    with pytest.raises(InvalidArgument):
        case.execute(do.Advance("back_to_intake"), actor=ACTOR, at=hours(5))
    case.execute(do.Advance("back_to_intake", reason="went back to the abuser and returned"), actor=ACTOR, at=hours(5))
    assert case.phase == "intake"
    for code in ("K1", "K2"):
        assert step(case, code, 1).state == "done", "history is kept"
        again = step(case, code)
        assert (again.occurrence, again.state) == (2, "active")
        assert again.due_at == hours(5) + timedelta(hours=24)
    assert step(case, "K8").state == "cancelled" and step(case, "K9").state == "cancelled"
    assert case.new_events[-1].reason == "went back to the abuser and returned"


def test_coming_back_to_support_after_a_return_brings_its_open_checkpoints_back(case: Case, hours: Hours) -> None:
    to_support(case, hours)
    case.execute(do.Advance("back_to_intake", reason="went back to the abuser"), actor=ACTOR, at=hours(5))
    to_support(case, hours, at=6)
    assert case.phase == "support"
    k9 = step(case, "K9")
    assert (k9.occurrence, k9.state) == (2, "active"), "housing must still be settled"
    assert k9.due_at == hours(6.5) + timedelta(days=28)
    assert (step(case, "K8").occurrence, step(case, "K8").state) == (2, "pending")


def test_moving_out_again_after_a_return_brings_the_first_week_contact_back(case: Case, hours: Hours) -> None:
    to_after_stay(case, hours)
    case.execute(do.Advance("back_to_support", reason="the new flat fell through"), actor=ACTOR, at=hours(10))
    assert step(case, "K11").state == "cancelled" and "moved_out" not in case.milestones
    case.execute(do.Advance("move_out"), actor=ACTOR, at=hours(20))
    k11 = step(case, "K11")
    assert (k11.occurrence, k11.state, k11.due_at) == (2, "active", hours(20) + timedelta(days=7))


# -- the repeating evaluation ---------------------------------------------------------------------------------------


def test_k12_repeats_every_28_days_three_times_then_every_42(case: Case) -> None:
    done_at = oslo(2026, 12, 21, 9, 0)
    case.execute(do.CompleteStep("K12"), actor=ACTOR, at=done_at)
    second = step(case, "K12")
    assert (second.occurrence, second.state) == (2, "active")
    assert second.due_at == oslo(2027, 1, 18, 9, 0), "28 days after occurrence 1 was done"
    case.execute(do.CompleteStep("K12"), actor=ACTOR, at=oslo(2027, 1, 18, 9, 0))
    assert step(case, "K12").due_at == oslo(2027, 2, 15, 9, 0)
    case.execute(do.CompleteStep("K12"), actor=ACTOR, at=oslo(2027, 2, 15, 9, 0))
    fourth = step(case, "K12")
    assert fourth.occurrence == 4
    assert fourth.due_at == oslo(2027, 3, 29, 9, 0), "42 calendar days, Oslo wall time kept across DST"
    case.execute(do.CompleteStep("K12"), actor=ACTOR, at=oslo(2027, 3, 29, 9, 0))
    assert step(case, "K12").due_at == oslo(2027, 5, 10, 9, 0)
    assert [s.state for s in case.steps if s.code == "K12"] == ["done"] * 4 + ["active"]


# -- closing ------------------------------------------------------------------------------------------------------


def test_closing_from_intake_needs_a_reason(case: Case, hours: Hours) -> None:
    with pytest.raises(InvalidArgument) as caught:
        case.execute(do.Close("declined"), actor=ACTOR, at=hours(1))
    assert caught.value.field == "reason"


def test_closing_early_with_a_reason_completes_k13_and_cancels_every_open_step(case: Case, hours: Hours) -> None:
    case.execute(do.AddStep(title="Call back", owner="coordinator", due_at=hours(8), reason="r"), actor=ACTOR, at=hours(1))
    case.execute(do.Pause(reason="unreachable"), actor=ACTOR, at=hours(2))
    open_before = {s.code for s in case.open_steps()}
    assert {"K1", "K2", "K3", "K4", "K12", "K13", "A1"} <= open_before
    case.execute(do.Close("declined", reason="does not want follow-up"), actor=ACTOR, at=hours(3))
    assert case.is_closed and case.phase == "closed"
    assert (case.outcome, case.closed_at, case.paused_since) == ("declined", hours(3), None)
    assert step(case, "K13").state == "done"
    assert case.open_steps() == []
    assert {s.code for s in case.steps if s.state == "cancelled"} == open_before - {"K13"}
    assert all(s.ended_at == hours(3) for s in case.steps if s.state == "cancelled")


def test_closing_cancels_open_handover_tasks(case: Case, hours: Hours) -> None:
    to_support(case, hours)
    case.execute(do.RecordConsent("police", scope=POLICE_SCOPE, given=True), actor=ACTOR, at=hours(2))
    case.execute(do.CreateHandover("K6"), actor=ACTOR, at=hours(3))
    case.execute(do.Close("ended_early", reason="moved abroad"), actor=ACTOR, at=hours(4))
    assert case.handovers[0].status == "cancelled"


def test_closing_after_the_stay_is_normal_and_needs_no_reason(case: Case, hours: Hours) -> None:
    to_after_stay(case, hours)
    case.execute(do.Close("safe_housing"), actor=ACTOR, at=hours(5))
    assert case.is_closed and case.outcome == "safe_housing" and step(case, "K13").state == "done"


def test_closing_with_an_unknown_outcome_is_refused(case: Case, hours: Hours) -> None:
    to_after_stay(case, hours)
    with pytest.raises(InvalidArgument) as caught:
        case.execute(do.Close("happy"), actor=ACTOR, at=hours(5))
    assert caught.value.field == "outcome"


def test_a_transfer_closes_the_case_with_the_outcome_transferred(case: Case, hours: Hours) -> None:
    with pytest.raises(InvalidArgument):
        case.execute(do.Transfer("Askøy", reason=""), actor=ACTOR, at=hours(1))
    case.execute(do.Transfer("Askøy", reason="moving to a relative"), actor=ACTOR, at=hours(1))
    assert (case.outcome, case.transferred_to, case.is_closed) == ("transferred", "Askøy", True)


CLOSED_CASE_CALLS: list[tuple[str, Callable[[Case, datetime], Any]]] = [
    ("complete", lambda c, at: c.execute(do.CompleteStep("K1"), actor=ACTOR, at=at)),
    ("skip", lambda c, at: c.execute(do.SkipStep("K1", reason="r"), actor=ACTOR, at=at)),
    ("add_step", lambda c, at: c.execute(do.AddStep(title="t", owner="coordinator", due_at=at, reason="r"), actor=ACTOR, at=at)),
    ("pause", lambda c, at: c.execute(do.Pause(reason="r"), actor=ACTOR, at=at)),
    ("resume", lambda c, at: c.execute(do.Resume(), actor=ACTOR, at=at)),
    ("advance", lambda c, at: c.execute(do.Advance("start_support"), actor=ACTOR, at=at)),
    ("record_milestone", lambda c, at: c.execute(do.RecordMilestone("moved_out", when=at), actor=ACTOR, at=at)),
    ("record_consent", lambda c, at: c.execute(do.RecordConsent("nav", scope=["name"], given=True), actor=ACTOR, at=at)),
    ("assign_coordinator", lambda c, at: c.execute(do.AssignCoordinator("coord-2"), actor=ACTOR, at=at)),
    ("set_condition", lambda c, at: c.execute(do.SetCondition("children", True, reason="r"), actor=ACTOR, at=at)),
    ("create_handover", lambda c, at: c.execute(do.CreateHandover("K6", legal_basis="avert_crime", reason="r"), actor=ACTOR, at=at)),
    ("close", lambda c, at: c.execute(do.Close("declined", reason="r"), actor=ACTOR, at=at)),
    ("transfer", lambda c, at: c.execute(do.Transfer("Askøy", reason="r"), actor=ACTOR, at=at)),
    ("migrate", lambda c, at: c.execute(
        do.Migrate(c.definition.id, c.definition.version, {s.code: s.code for s in c.steps}, reason="r"),
        actor=ACTOR, at=at, resolve=lambda *_: c.definition)),
]


@pytest.mark.parametrize("name, call", CLOSED_CASE_CALLS, ids=[n for n, _ in CLOSED_CASE_CALLS])
def test_every_operation_on_a_closed_case_is_refused_with_nothing_allowed(
    case: Case, hours: Hours, name: str, call: Callable[[Case, datetime], Any]
) -> None:
    case.execute(do.Close("declined", reason="declined"), actor=ACTOR, at=hours(1))
    before, events = case.snapshot(), list(case.new_events)
    with pytest.raises(OperationNotAllowed) as caught:
        call(case, hours(2))
    assert caught.value.allowed == [] and caught.value.phase == "closed"
    assert "allowed now: none" in str(caught.value)
    assert case.snapshot() == before and case.new_events == events


# -- refused operations change nothing ------------------------------------------------------------------------------


@pytest.fixture
def busy_case(open_case: Callable[..., Case], hours: Hours) -> Case:
    """A case in support with children, consent to the police, a police task and partial consent to NAV."""
    case = open_case(conditions=["children"])
    to_support(case, hours)
    case.execute(do.RecordConsent("police", scope=POLICE_SCOPE, given=True), actor=ACTOR, at=hours(2))
    case.execute(do.RecordConsent("nav", scope=["name"], given=True), actor=ACTOR, at=hours(2))
    case.execute(do.CreateHandover("K6"), actor=ACTOR, at=hours(3))
    case.execute(do.AddStep(title="Call back", owner="coordinator", due_at=hours(30), reason="r"), actor=ACTOR, at=hours(3))
    return case


NAIVE = datetime(2026, 11, 24, 12, 0)
REFUSED_CALLS: list[tuple[str, type[DomainError], Callable[[Case, datetime], Any]]] = [
    ("complete k6 by hand", OperationNotAllowed, lambda c, at: c.execute(do.CompleteStep("K6"), actor=ACTOR, at=at)),
    ("complete an unknown code", UnknownCheckpoint, lambda c, at: c.execute(do.CompleteStep("K99"), actor=ACTOR, at=at)),
    ("complete a done checkpoint", OperationNotAllowed, lambda c, at: c.execute(do.CompleteStep("K1"), actor=ACTOR, at=at)),
    ("complete a waiting checkpoint", OperationNotAllowed, lambda c, at: c.execute(do.CompleteStep("K8"), actor=ACTOR, at=at)),
    ("complete without an actor", InvalidArgument, lambda c, at: c.execute(do.CompleteStep("K9"), actor=" ", at=at)),
    ("complete at a naive time", InvalidArgument, lambda c, at: c.execute(do.CompleteStep("K9"), actor=ACTOR, at=NAIVE)),
    ("complete with a huge note", InvalidArgument, lambda c, at: c.execute(do.CompleteStep("K9", note="x" * 3000), actor=ACTOR, at=at)),
    ("skip k13", OperationNotAllowed, lambda c, at: c.execute(do.SkipStep("K13", reason="r"), actor=ACTOR, at=at)),
    ("skip without reason", InvalidArgument, lambda c, at: c.execute(do.SkipStep("K9", reason=""), actor=ACTOR, at=at)),
    ("skip a later-stage checkpoint", OperationNotAllowed, lambda c, at: c.execute(do.SkipStep("K11", reason="r"), actor=ACTOR, at=at)),
    ("add a step for an unknown owner", InvalidArgument, lambda c, at: c.execute(do.AddStep(title="t", owner="neighbour", due_at=at, reason="r"), actor=ACTOR, at=at)),
    ("add a step without title", InvalidArgument, lambda c, at: c.execute(do.AddStep(title="", owner="coordinator", due_at=at, reason="r"), actor=ACTOR, at=at)),
    ("resume a running clock", OperationNotAllowed, lambda c, at: c.execute(do.Resume(), actor=ACTOR, at=at)),
    ("advance into the final stage", OperationNotAllowed, lambda c, at: c.execute(do.Advance("close"), actor=ACTOR, at=at)),
    ("advance from the wrong stage", OperationNotAllowed, lambda c, at: c.execute(do.Advance("start_support"), actor=ACTOR, at=at)),
    ("return without a reason", InvalidArgument, lambda c, at: c.execute(do.Advance("back_to_intake"), actor=ACTOR, at=at)),
    ("advance an unknown trigger", OperationNotAllowed, lambda c, at: c.execute(do.Advance("teleport"), actor=ACTOR, at=at)),
    ("record an unknown milestone", InvalidArgument, lambda c, at: c.execute(do.RecordMilestone("wedding", when=at), actor=ACTOR, at=at)),
    ("consent for an unknown agency", InvalidArgument, lambda c, at: c.execute(do.RecordConsent("bank", scope=["name"], given=True), actor=ACTOR, at=at)),
    ("consent with an unknown scope", InvalidArgument, lambda c, at: c.execute(do.RecordConsent("nav", scope=["diary"], given=True), actor=ACTOR, at=at)),
    ("consent with no scope", InvalidArgument, lambda c, at: c.execute(do.RecordConsent("nav", scope=[], given=True), actor=ACTOR, at=at)),
    ("assign nobody", InvalidArgument, lambda c, at: c.execute(do.AssignCoordinator(" "), actor=ACTOR, at=at)),
    ("set a condition already set", InvalidArgument, lambda c, at: c.execute(do.SetCondition("children", True, reason="r"), actor=ACTOR, at=at)),
    ("set an unknown condition", InvalidArgument, lambda c, at: c.execute(do.SetCondition("pets", True, reason="r"), actor=ACTOR, at=at)),
    ("hand over with partial consent", ConsentRequired, lambda c, at: c.execute(do.CreateHandover("K7"), actor=ACTOR, at=at)),
    ("hand over twice", OperationNotAllowed, lambda c, at: c.execute(do.CreateHandover("K6"), actor=ACTOR, at=at)),
    ("hand over a non-handover checkpoint", InvalidArgument, lambda c, at: c.execute(do.CreateHandover("K9"), actor=ACTOR, at=at)),
    ("avert crime for nav", InvalidArgument, lambda c, at: c.execute(do.CreateHandover("K7", legal_basis="avert_crime", reason="r"), actor=ACTOR, at=at)),
    ("a made-up legal basis", InvalidArgument, lambda c, at: c.execute(do.CreateHandover("K7", legal_basis="gut_feeling", reason="r"), actor=ACTOR, at=at)),
    ("update an unknown task", InvalidArgument, lambda c, at: c.execute(do.UpdateHandover(uuid.UUID(int=99), "accepted"), actor=ACTOR, at=at)),
    ("update to an unknown status", InvalidArgument, lambda c, at: c.execute(do.UpdateHandover(c.handovers[0].id, "lost"), actor=ACTOR, at=at)),
    ("decline without a note", InvalidArgument, lambda c, at: c.execute(do.UpdateHandover(c.handovers[0].id, "declined"), actor=ACTOR, at=at)),
    ("close with an unknown outcome", InvalidArgument, lambda c, at: c.execute(do.Close("happy"), actor=ACTOR, at=at)),
    ("close early without a reason", InvalidArgument, lambda c, at: c.execute(do.Close("declined"), actor=ACTOR, at=at)),
    ("transfer without a reason", InvalidArgument, lambda c, at: c.execute(do.Transfer("Askøy", reason=""), actor=ACTOR, at=at)),
    ("migrate with codes unmapped", InvalidArgument, lambda c, at: c.execute(
        do.Migrate(c.definition.id, c.definition.version, {"K0": "K0"}, reason="r"), actor=ACTOR, at=at,
        resolve=lambda *_: c.definition)),
    ("note no person change", InvalidArgument, lambda c, at: c.execute(do.NotePersonChange([]), actor=ACTOR, at=at)),
]


@pytest.mark.parametrize("name, error, call", REFUSED_CALLS, ids=[n for n, _, _ in REFUSED_CALLS])
def test_a_refused_operation_changes_nothing(
    busy_case: Case, hours: Hours, name: str, error: type[DomainError], call: Callable[[Case, datetime], Any]
) -> None:
    before, events, head = busy_case.snapshot(), list(busy_case.new_events), busy_case.head_hash
    with pytest.raises(error):
        call(busy_case, hours(10))
    assert busy_case.snapshot() == before
    assert busy_case.new_events == events and busy_case.head_hash == head


def test_pausing_a_paused_case_changes_nothing(busy_case: Case, hours: Hours) -> None:
    busy_case.execute(do.Pause(reason="in hospital"), actor=ACTOR, at=hours(10))
    before, events = busy_case.snapshot(), list(busy_case.new_events)
    with pytest.raises(OperationNotAllowed):
        busy_case.execute(do.Pause(reason="still"), actor=ACTOR, at=hours(11))
    assert busy_case.snapshot() == before and busy_case.new_events == events


# -- the event chain and replay ---------------------------------------------------------------------------------------


def test_every_event_links_to_the_hash_of_the_one_before(busy_case: Case) -> None:
    events = busy_case.new_events
    assert [e.seq for e in events] == list(range(1, len(events) + 1)) == list(range(1, busy_case.version + 1))
    assert events[0].prev_hash == GENESIS
    for previous, event in zip(events, events[1:]):
        assert event.prev_hash == previous.hash
    for event in events:
        assert event_hash(event.prev_hash, event.body()) == event.hash
    assert busy_case.head_hash == events[-1].hash


def test_each_event_records_the_state_before_and_after(busy_case: Case) -> None:
    events = busy_case.new_events
    for previous, event in zip(events, events[1:]):
        assert event.state_before == previous.state_after
    assert events[-1].state_after["digest"] == busy_case.digest()


def test_editing_a_payload_breaks_the_recomputed_hash(busy_case: Case) -> None:
    event = busy_case.new_events[3]
    tampered = dataclasses.replace(event, payload={**event.payload, "code": "K7"})
    assert event_hash(tampered.prev_hash, tampered.body()) != event.hash


def test_replay_reproduces_the_case(busy_case: Case, definition: PathwayDefinition, hours: Hours) -> None:
    busy_case.execute(do.Pause(reason="in hospital"), actor=ACTOR, at=hours(10))
    busy_case.execute(do.Resume(), actor=ACTOR, at=hours(20))
    busy_case.execute(do.UpdateHandover(busy_case.handovers[0].id, "completed"), actor="police-contact", at=hours(21))
    busy_case.execute(do.NotePersonChange(["phone"]), actor=ACTOR, at=hours(22))
    busy_case.execute(do.Close("declined", reason="declined further follow-up"), actor=ACTOR, at=hours(23))
    rebuilt = replay(busy_case.new_events, resolver(definition))
    assert rebuilt.digest() == busy_case.digest()
    assert rebuilt.snapshot() == busy_case.snapshot()
    assert rebuilt.head_hash == busy_case.head_hash
    assert rebuilt.new_events == []


def test_replay_accepts_events_as_plain_dicts(busy_case: Case, definition: PathwayDefinition) -> None:
    rows = [dataclasses.asdict(e) for e in busy_case.new_events]
    assert replay(rows, resolver(definition)).digest() == busy_case.digest()


def _tamper_payload(events: list[Event]) -> list[Event]:
    assert events[1].payload["code"] == "K1"
    events[1] = dataclasses.replace(events[1], payload={**events[1].payload, "code": "K2"})
    return events


def _add_to_payload(events: list[Event]) -> list[Event]:
    events[3] = dataclasses.replace(events[3], payload={**events[3].payload, "note": "added later"})
    return events


def _tamper_time(events: list[Event]) -> list[Event]:
    events[2] = dataclasses.replace(events[2], at=events[2].at + timedelta(minutes=1))
    return events


def _tamper_state_after(events: list[Event]) -> list[Event]:
    events[4] = dataclasses.replace(events[4], state_after={**events[4].state_after, "phase": "closed"})
    return events


def _tamper_prev_hash(events: list[Event]) -> list[Event]:
    events[4] = dataclasses.replace(events[4], prev_hash="f" * 64)
    return events


def _tamper_hash(events: list[Event]) -> list[Event]:
    events[-1] = dataclasses.replace(events[-1], hash="0" * 64)
    return events


def _drop_one(events: list[Event]) -> list[Event]:
    del events[2]
    return events


def _swap_two(events: list[Event]) -> list[Event]:
    events[1], events[2] = events[2], events[1]
    return events


def _drop_open(events: list[Event]) -> list[Event]:
    return events[1:]


TAMPERINGS = [_tamper_payload, _add_to_payload, _tamper_time, _tamper_state_after, _tamper_prev_hash, _tamper_hash, _drop_one,
              _swap_two, _drop_open]


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=[t.__name__.strip("_") for t in TAMPERINGS])
def test_replay_of_a_tampered_event_list_is_refused(
    busy_case: Case, definition: PathwayDefinition, tamper: Callable[[list[Event]], list[Event]]
) -> None:
    with pytest.raises(DomainError):
        replay(tamper(list(busy_case.new_events)), resolver(definition))


def test_replay_of_nothing_is_refused(definition: PathwayDefinition) -> None:
    with pytest.raises(DomainError):
        replay([], resolver(definition))


def test_the_same_operations_give_the_same_chain(open_case: Callable[..., Case], hours: Hours) -> None:
    one, two = open_case(), open_case()
    for case in (one, two):
        to_support(case, hours)
    assert [e.hash for e in one.new_events] == [e.hash for e in two.new_events]
    assert one.digest() == two.digest()


def test_timestamps_are_stored_in_utc(open_case: Callable[..., Case]) -> None:
    at = oslo(2026, 11, 23, 9, 0)
    case = open_case(first_contact_at=at, at=at)
    assert case.opened_at.tzinfo == timezone.utc and case.opened_at == at


def test_completing_after_the_deadline_needs_the_reason_for_the_deviation(case, start) -> None:  # type: ignore[no-untyped-def]
    from pathway.errors import InvalidArgument

    late = start + timedelta(hours=30)  # K1 was due 24 hours after first contact
    with pytest.raises(InvalidArgument, match="deviation"):
        case.execute(do.CompleteStep("K1"), actor="k", at=late)
    case.execute(do.CompleteStep("K1", note="personen var ikke tilgjengelig"), actor="k", at=late)
    assert case.new_events[-1].reason == "personen var ikke tilgjengelig"
    case.execute(do.CompleteStep("K2"), actor="k", at=start + timedelta(hours=1))  # in time: no reason needed
    assert case.new_events[-1].reason is None


def test_completing_during_a_pause_does_not_count_the_paused_time_as_late(case, start) -> None:  # type: ignore[no-untyped-def]
    case.execute(do.Pause(reason="på sykehus"), actor="k", at=start + timedelta(hours=20))
    # K1 was due 24 h after first contact; 20 h in, the clock stopped; 30 h later it is still only 20 h used.
    case.execute(do.CompleteStep("K1"), actor="k", at=start + timedelta(hours=50))
    k1 = next(s for s in case.steps if s.code == "K1")
    assert k1.state == "done" and k1.due_at == start + timedelta(hours=54)
    assert k1.ended_at <= k1.due_at  # counts as within the deadline in the managers' figures


def test_an_agency_completing_a_handover_after_its_deadline_gives_the_reason(case, start) -> None:  # type: ignore[no-untyped-def]
    from pathway.errors import InvalidArgument

    case.execute(do.RecordConsent("police", scope=["name", "contact", "threat_assessment"], given=True), actor="k", at=start + timedelta(hours=1))
    task = case.execute(do.CreateHandover("K6"), actor="k", at=start + timedelta(hours=2))
    late = start + timedelta(days=5)  # K6 was due one working day after consent
    with pytest.raises(InvalidArgument, match="deviation"):
        case.execute(do.UpdateHandover(task, "completed"), actor="politi", at=late)
    case.execute(do.UpdateHandover(task, "completed", note="ventet på avhør"), actor="politi", at=late)
    assert case.new_events[-1].reason == "ventet på avhør"


# -- migrating to a new version that renumbers its checkpoints ----------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "definitions" / "examples"


def test_a_migration_that_gives_a_code_to_another_checkpoint_keeps_every_step_apart(
    case: Case, definition: PathwayDefinition, hours: Hours
) -> None:
    from ruamel.yaml import YAML

    v3 = load_definition(EXAMPLES / f"krisesenter-v{definition.version + 1}" / "krisesenter.yaml")
    mapping = YAML(typ="safe").load((EXAMPLES / f"krisesenter-v{definition.version}-to-v{v3.version}.yaml")
                                    .read_text(encoding="utf-8"))
    assert v3.version == definition.version + 1  # the example is the next version of the live one
    assert mapping["K8"] == "K9" and v3.checkpoint["K8"].handover is not None  # the live K8 is its K9; K8 is new
    to_support(case, hours)
    meeting = step(case, "K8")
    case.execute(do.Migrate(v3.id, v3.version, mapping, reason="ny versjon av forløpet"), actor=ACTOR, at=hours(3),
                 resolve=lambda *_: v3)

    assert step(case, "K9").id == meeting.id and step(case, "K9").state == meeting.state == "pending"
    review = step(case, "K8")
    assert review.id != meeting.id
    assert len({s.id for s in case.steps}) == len(case.steps)
    versions = {definition.key: definition, v3.key: v3}
    rebuilt = replay(case.new_events, lambda pathway_id, version: versions[(pathway_id, version)])
    assert rebuilt.snapshot() == case.snapshot()


def test_the_shipped_v1_to_v2_mapping_moves_every_v1_code_onto_the_same_checkpoint_of_the_live_v2(
    definition: PathwayDefinition
) -> None:
    from ruamel.yaml import YAML

    mapping = YAML(typ="safe").load((EXAMPLES / "krisesenter-v1-to-v2.yaml").read_text(encoding="utf-8"))
    v1_codes = [f"K{n}" for n in range(14)]  # version 1 had K0-K13; v2 renumbered none and added K14
    assert definition.version >= 2  # v3 added K15 and renumbered none either
    assert mapping == {code: code for code in v1_codes}
    assert set(mapping.values()) <= set(definition.checkpoint)
