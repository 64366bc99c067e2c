"""Recording after the fact: a checkpoint done yesterday at a meeting, a pause from when the person went into
hospital, consent given on the phone last night. The event keeps both times (``at``: when it was recorded; the
payload's ``effective_at``: when it happened); the case, its deadlines and its figures use the effective time."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from pathway.calendar import OSLO
from pathway.case import Case, replay
from pathway.case import commands as do
from pathway.case.events import Event
from pathway.definition import PathwayDefinition, parse_definition
from pathway.errors import DomainError, InvalidArgument

Hours = Callable[[float], datetime]
ACTOR = "coordinator-1"
POLICE_SCOPE = ("name", "contact", "threat_assessment")


def step(case: Case, code: str):  # type: ignore[no-untyped-def]
    return max((s for s in case.steps if s.code == code), key=lambda s: s.occurrence)


def resolver(definition: PathwayDefinition) -> Callable[[str, int], PathwayDefinition]:
    return lambda pathway_id, version: definition


def test_a_checkpoint_done_yesterday_is_recorded_as_done_then_and_is_not_late(case: Case, hours: Hours) -> None:
    # First contact Monday 09:00, K1 due in 24 h; it was done Monday 14:00 and is recorded Tuesday 10:00.
    case.execute(do.CompleteStep("K1", effective_at=hours(5)), actor=ACTOR, at=hours(25))
    k1 = step(case, "K1")
    assert k1.state == "done" and k1.ended_at == hours(5) and k1.ended_at <= k1.due_at
    event = case.new_events[-1]
    assert event.at == hours(25), "the event says when it was recorded"
    assert event.payload["effective_at"] == hours(5).isoformat(), "and when the work was done"
    assert event.reason is None, "done on time: no deviation to document"


def test_the_same_checkpoint_recorded_as_done_now_is_late_and_needs_its_reason(case: Case, hours: Hours) -> None:
    with pytest.raises(InvalidArgument) as caught:
        case.execute(do.CompleteStep("K1"), actor=ACTOR, at=hours(25))
    assert caught.value.field == "note"


def test_a_change_without_an_effective_time_records_none_so_older_events_hash_as_they_did(
    case: Case, hours: Hours
) -> None:
    case.execute(do.CompleteStep("K1"), actor=ACTOR, at=hours(1))
    case.execute(do.Pause(reason="på sykehus"), actor=ACTOR, at=hours(2))
    case.execute(do.Resume(), actor=ACTOR, at=hours(3))
    case.execute(do.RecordConsent("police", scope=POLICE_SCOPE), actor=ACTOR, at=hours(4))
    assert all("effective_at" not in e.payload for e in case.new_events)


@pytest.mark.parametrize("when, why", [(26, "future"), (0.5, "precede")])
def test_an_effective_time_after_now_or_before_the_previous_change_is_refused_naming_the_field(
    case: Case, hours: Hours, when: float, why: str
) -> None:
    case.execute(do.CompleteStep("K2"), actor=ACTOR, at=hours(1))  # the case's previous change: Monday 10:00
    version = case.version
    with pytest.raises(InvalidArgument) as caught:
        case.execute(do.CompleteStep("K1", effective_at=hours(when)), actor=ACTOR, at=hours(25))
    assert caught.value.field == "effective_at" and why in str(caught.value)
    assert case.version == version and step(case, "K1").is_open, "a refused change changes nothing"


def test_work_cannot_be_recorded_as_done_before_a_step_was_added_or_a_phase_began(case: Case, hours: Hours) -> None:
    case.execute(do.AddStep("Følge til fastlege", "coordinator", hours(48), "avtalt"), actor=ACTOR, at=hours(10))
    with pytest.raises(InvalidArgument) as caught:
        case.execute(do.CompleteStep("K1", effective_at=hours(5)), actor=ACTOR, at=hours(20))
    assert caught.value.field == "effective_at"
    case.execute(do.CompleteStep("K1", effective_at=hours(10)), actor=ACTOR, at=hours(20))


def test_an_effective_time_without_a_time_zone_is_refused(case: Case, hours: Hours) -> None:
    with pytest.raises(InvalidArgument) as caught:
        case.execute(do.Pause(reason="x", effective_at=datetime(2026, 11, 23, 12)), actor=ACTOR, at=hours(5))
    assert caught.value.field == "effective_at"


def test_changes_recorded_after_the_fact_keep_their_order(case: Case, hours: Hours) -> None:
    # Tuesday morning the coordinator records Monday's work in the order it was done.
    case.execute(do.CompleteStep("K1", effective_at=hours(5)), actor=ACTOR, at=hours(24))
    case.execute(do.CompleteStep("K2", effective_at=hours(6)), actor=ACTOR, at=hours(24.1))
    with pytest.raises(InvalidArgument):
        case.execute(do.RecordConsent("police", scope=POLICE_SCOPE, effective_at=hours(5.5)), actor=ACTOR,
                     at=hours(24.2))
    case.execute(do.RecordConsent("police", scope=POLICE_SCOPE, effective_at=hours(6)), actor=ACTOR, at=hours(24.2))
    assert case.consents["police"].recorded_at == hours(6)


def test_a_pause_and_resume_recorded_after_the_fact_move_deadlines_by_the_time_the_clock_really_stood_still(
    case: Case, hours: Hours
) -> None:
    k2_due = step(case, "K2").due_at  # 24 hours (real time)
    case.execute(do.Pause(reason="på sykehus", effective_at=hours(2)), actor=ACTOR, at=hours(6))
    assert case.paused_since == hours(2)
    case.execute(do.Resume(effective_at=hours(12)), actor=ACTOR, at=hours(20))
    assert step(case, "K2").due_at == k2_due + timedelta(hours=10)
    assert [e.at for e in case.new_events[-2:]] == [hours(6), hours(20)]


def test_a_resume_before_its_pause_is_refused_naming_the_effective_time(case: Case, hours: Hours) -> None:
    case.execute(do.Pause(reason="utilgjengelig", effective_at=hours(4)), actor=ACTOR, at=hours(6))
    with pytest.raises(InvalidArgument) as caught:
        case.execute(do.Resume(effective_at=hours(3)), actor=ACTOR, at=hours(7))
    assert caught.value.field == "effective_at"


def test_consent_given_last_night_counts_the_police_handover_deadline_from_then(case: Case, hours: Hours) -> None:
    # Consent on Monday 15:00, recorded Tuesday 08:00: K6 (1 working day after consent) is due Tuesday 15:00.
    case.execute(do.RecordConsent("police", scope=POLICE_SCOPE, effective_at=hours(6)), actor=ACTOR, at=hours(23))
    assert step(case, "K6").anchor_at == hours(6)
    assert step(case, "K6").due_at == hours(6 + 24)
    assert step(case, "K4").ended_at == hours(6), "consent recorded: K4 done when consent was given"


def test_a_handover_completed_yesterday_completes_its_checkpoint_then(case: Case, hours: Hours) -> None:
    case.execute(do.RecordConsent("police", scope=POLICE_SCOPE), actor=ACTOR, at=hours(1))
    task = case.execute(do.CreateHandover("K6"), actor=ACTOR, at=hours(1))
    case.execute(do.UpdateHandover(task, "completed", effective_at=hours(8)), actor="politi-1", at=hours(30))
    assert step(case, "K6").ended_at == hours(8) and case.handovers[0].updated_at == hours(8)
    assert case.new_events[-1].reason is None, "done within its working day: not late"


def test_replay_reproduces_changes_recorded_after_the_fact(case: Case, hours: Hours, definition: PathwayDefinition
                                                           ) -> None:
    case.execute(do.CompleteStep("K1", effective_at=hours(5)), actor=ACTOR, at=hours(25))
    case.execute(do.Pause(reason="på sykehus", effective_at=hours(25)), actor=ACTOR, at=hours(26))
    case.execute(do.Resume(effective_at=hours(30)), actor=ACTOR, at=hours(40))
    case.execute(do.RecordConsent("police", scope=POLICE_SCOPE, effective_at=hours(41)), actor=ACTOR, at=hours(48))
    task = case.execute(do.CreateHandover("K6"), actor=ACTOR, at=hours(48))
    case.execute(do.UpdateHandover(task, "completed", effective_at=hours(49)), actor="politi-1", at=hours(50))
    events = list(case.new_events)
    rebuilt = replay(events, resolver(definition))
    assert rebuilt.snapshot() == case.snapshot()
    assert rebuilt.head_hash == case.head_hash


# -- item 7: a pause on a working-day deadline adds back the paused working time, in working time -------------


def three_working_days(shipped_text: str) -> PathwayDefinition:
    """The shipped pathway with K3 (coordinator assigned) due 3 working days after first contact."""
    text = shipped_text.replace(
        "    completed_by: assign_coordinator\n    deadline: {after: first_contact, working_days: 2}\n",
        "    completed_by: assign_coordinator\n    deadline: {after: first_contact, working_days: 3}\n")
    assert text != shipped_text
    return parse_definition(text)


def oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO)


def three_working_day_case(definition: PathwayDefinition, monday: datetime) -> Case:
    return Case.open(definition, case_id=uuid.UUID(int=3), reference="R", unit="bergen", first_contact_at=monday,
                     actor=ACTOR, at=monday)


def pause_recorded_before_the_rule(reason: str) -> do.Pause:
    """A pause as one recorded before pauses recorded their rule: what replay makes of such an event (no
    ``paused_time`` in its payload)."""
    event = Event(case_id=uuid.UUID(int=3), seq=2, at=datetime(2026, 1, 6, 9, tzinfo=timezone.utc), actor=ACTOR,
                  operation="pause", reason=reason, payload={}, state_before={}, state_after={}, prev_hash="", hash="")
    return do.Pause.from_event(event)


def test_a_pause_on_a_working_day_deadline_moves_it_by_the_paused_working_days(shipped_text: str) -> None:
    # 3 working days from Monday 5 April 2027 10:00 is Thursday 8 April 10:00; paused Tuesday 10:00 to Thursday
    # 10:00 (two working days), it is due Monday 12 April 10:00, not Saturday 10 April (48 hours later).
    definition = three_working_days(shipped_text)
    case = three_working_day_case(definition, oslo(2027, 4, 5, 10))
    assert step(case, "K3").due_at == oslo(2027, 4, 8, 10)
    k1_due = step(case, "K1").due_at
    case.execute(do.Pause(reason="på sykehus"), actor=ACTOR, at=oslo(2027, 4, 6, 10))
    assert case.new_events[-1].payload == {"paused_time": "working"}, "the pause records the rule it moves by"
    case.execute(do.Resume(), actor=ACTOR, at=oslo(2027, 4, 8, 10))
    assert case.new_events[-1].payload == {"paused_time": "working"}, "and the resume the rule it moved by"
    assert step(case, "K3").due_at == oslo(2027, 4, 12, 10)
    assert step(case, "K1").due_at == k1_due + timedelta(hours=48), "a deadline in hours moves by the hours"


def test_a_step_done_during_such_a_pause_keeps_the_deadline_a_resume_would_have_given(shipped_text: str) -> None:
    definition = three_working_days(shipped_text)
    case = three_working_day_case(definition, oslo(2027, 4, 5, 10))
    case.execute(do.Pause(reason="på sykehus"), actor=ACTOR, at=oslo(2027, 4, 6, 10))
    case.execute(do.AssignCoordinator("koordinator-1"), actor=ACTOR, at=oslo(2027, 4, 8, 10))
    assert step(case, "K3").state == "done" and step(case, "K3").due_at == oslo(2027, 4, 12, 10)


def test_the_rule_is_the_pause_events_whatever_the_date_and_replay_keeps_it(shipped_text: str) -> None:
    # Monday 5 January 2026 10:00 + 3 working days = Thursday 8 January; paused Tuesday 10:00 to Thursday 10:00:
    # due Monday 12 January 10:00 (a pause recorded now, though the week lies before the rule was made).
    definition = three_working_days(shipped_text)
    case = three_working_day_case(definition, oslo(2026, 1, 5, 10))
    case.execute(do.Pause(reason="på sykehus"), actor=ACTOR, at=oslo(2026, 1, 6, 10))
    case.execute(do.Resume(), actor=ACTOR, at=oslo(2026, 1, 8, 10))
    assert step(case, "K3").due_at == oslo(2026, 1, 12, 10)
    rebuilt = replay(list(case.new_events), resolver(definition))
    assert step(rebuilt, "K3").due_at == oslo(2026, 1, 12, 10) and rebuilt.head_hash == case.head_hash


def test_a_pause_over_a_public_holiday_gives_back_only_the_working_time_it_took(shipped_text: str) -> None:
    # Monday 11 May 2026 10:00 + 3 working days = Friday 15 May 10:00 (Thursday 14 May is Ascension Day). Paused
    # Tuesday 10:00 to Friday 10:00: 14 + 24 + 0 + 10 = 48 working hours, so due Tuesday 19 May 10:00 (Friday 14 h,
    # Monday 24 h, Tuesday 10 h); the calendar rule would have said Monday 18 May 10:00 (72 hours later).
    definition = three_working_days(shipped_text)
    case = three_working_day_case(definition, oslo(2026, 5, 11, 10))
    assert step(case, "K3").due_at == oslo(2026, 5, 15, 10)
    case.execute(do.Pause(reason="på sykehus"), actor=ACTOR, at=oslo(2026, 5, 12, 10))
    case.execute(do.Resume(), actor=ACTOR, at=oslo(2026, 5, 15, 10))
    assert step(case, "K3").due_at == oslo(2026, 5, 19, 10)


def test_an_older_pause_event_without_the_rule_replays_to_the_calendar_time_deadline(shipped_text: str) -> None:
    # The same week as above, the pause recorded before the rule: 48 hours later, Saturday 10 January 10:00, as then.
    definition = three_working_days(shipped_text)
    case = three_working_day_case(definition, oslo(2026, 1, 5, 10))
    case.execute(pause_recorded_before_the_rule("på sykehus"), actor=ACTOR, at=oslo(2026, 1, 6, 10))
    assert case.new_events[-1].payload == {}, "recorded as pauses were: nothing new in the payload, nor its hash"
    case.execute(do.Resume(), actor=ACTOR, at=oslo(2026, 1, 8, 10))
    assert case.new_events[-1].payload == {}, "its resume too"
    assert step(case, "K3").due_at == oslo(2026, 1, 10, 10)
    events = list(case.new_events)
    rebuilt = replay(events, resolver(definition))
    assert step(rebuilt, "K3").due_at == oslo(2026, 1, 10, 10)
    assert rebuilt.snapshot() == case.snapshot() and rebuilt.head_hash == case.head_hash


def test_the_rule_is_under_the_hash_chain_a_pause_event_stripped_of_it_does_not_verify(shipped_text: str) -> None:
    definition = three_working_days(shipped_text)
    case = three_working_day_case(definition, oslo(2026, 1, 5, 10))
    case.execute(do.Pause(reason="på sykehus"), actor=ACTOR, at=oslo(2026, 1, 6, 10))
    case.execute(do.Resume(), actor=ACTOR, at=oslo(2026, 1, 8, 10))
    events = [replace(e, payload={}) if e.operation == "pause" else e for e in case.new_events]
    with pytest.raises(DomainError, match="pause"):
        replay(events, resolver(definition))


def test_a_case_paused_while_closing_keeps_no_rule(shipped_text: str) -> None:
    definition = three_working_days(shipped_text)
    case = three_working_day_case(definition, oslo(2027, 4, 5, 10))
    case.execute(do.Pause(reason="på sykehus"), actor=ACTOR, at=oslo(2027, 4, 6, 10))
    assert case.paused_time == "working"
    case.execute(do.Close("declined", reason="ønsker ikke videre oppfølging"), actor=ACTOR, at=oslo(2027, 4, 7, 10))
    assert case.paused_since is None and case.paused_time is None


def test_the_utc_of_the_new_deadline_is_the_oslo_wall_clock_across_the_autumn_change(shipped_text: str) -> None:
    # Mon 25 Oct 2027 10:00 CEST + 3 working days = Thu 28 Oct 10:00; paused Wed 10:00 to Fri 10:00 (two working
    # days), due Mon 1 Nov 10:00 CET (09:00 UTC), after the clocks went back on Sunday 31 October.
    definition = three_working_days(shipped_text)
    monday = oslo(2027, 10, 25, 10)
    case = Case.open(definition, case_id=uuid.UUID(int=3), reference="R", unit="bergen", first_contact_at=monday,
                     actor=ACTOR, at=monday)
    case.execute(do.Pause(reason="på sykehus"), actor=ACTOR, at=oslo(2027, 10, 27, 10))
    case.execute(do.Resume(), actor=ACTOR, at=oslo(2027, 10, 29, 10))
    assert step(case, "K3").due_at == datetime(2027, 11, 1, 9, tzinfo=timezone.utc)
