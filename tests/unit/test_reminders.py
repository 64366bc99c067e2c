"""Reminder ladders fire at the right moments across working days, holidays and daylight-saving changes."""

from __future__ import annotations

from datetime import datetime, timezone

from pathway.calendar import OSLO
from pathway.definition import PathwayDefinition
from pathway.reminders import HANDOVER_UNACCEPTED, crossed, first_reminder_at, rung_times


def oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO)


def moments(definition: PathwayDefinition, code: str, due: datetime) -> dict[str, datetime]:
    return {r.kind: r.at.astimezone(OSLO) for r in rung_times(definition, code, due.astimezone(timezone.utc))}


def test_the_default_ladder_reminds_the_day_before_and_escalates_on_working_days(definition: PathwayDefinition) -> None:
    # K3 due Tuesday 1 Dec 2026 10:00: remind Monday, escalate Wednesday, manager on Friday.
    got = moments(definition, "K3", oslo(2026, 12, 1, 10, 0))
    assert got == {
        "due_soon": oslo(2026, 11, 30, 10, 0),
        "due_now": oslo(2026, 12, 1, 10, 0),
        "escalation": oslo(2026, 12, 2, 10, 0),
        "manager_escalation": oslo(2026, 12, 4, 10, 0),
    }


def test_escalation_skips_christmas_but_not_christmas_eve(definition: PathwayDefinition) -> None:
    got = moments(definition, "K3", oslo(2026, 12, 23, 10, 0))
    assert got["escalation"] == oslo(2026, 12, 24, 10, 0)  # 24 Dec is a working day in Norway
    assert got["manager_escalation"] == oslo(2026, 12, 29, 10, 0)  # 25, 26 (Sat), 27 (Sun) do not count


def test_escalation_skips_easter(definition: PathwayDefinition) -> None:
    got = moments(definition, "K3", oslo(2026, 4, 1, 12, 0))  # the Wednesday before Maundy Thursday
    assert got["escalation"] == oslo(2026, 4, 7, 12, 0)
    assert got["manager_escalation"] == oslo(2026, 4, 9, 12, 0)


def test_escalation_skips_seventeenth_of_may_and_ascension(definition: PathwayDefinition) -> None:
    got = moments(definition, "K3", oslo(2027, 5, 14, 9, 0))  # a Friday; 17 May 2027 is a Monday
    assert got["escalation"] == oslo(2027, 5, 18, 9, 0)


def test_hours_before_a_deadline_count_real_hours_across_the_spring_change(definition: PathwayDefinition) -> None:
    # K1's urgent ladder reminds 6 h before; across the night of 29 March 2026 the wall clock jumps an hour.
    got = moments(definition, "K1", oslo(2026, 3, 29, 5, 0))
    assert got["due_soon"] == oslo(2026, 3, 28, 22, 0)
    real = got["due_now"].astimezone(timezone.utc) - got["due_soon"].astimezone(timezone.utc)
    assert real.total_seconds() == 6 * 3600


def test_hours_after_a_deadline_count_real_hours_across_the_autumn_change(definition: PathwayDefinition) -> None:
    got = moments(definition, "K1", oslo(2026, 10, 25, 0, 30))
    assert got["escalation"] == datetime(2026, 10, 25, 2, 30, tzinfo=timezone.utc).astimezone(OSLO)
    assert got["escalation"].strftime("%H:%M") == "03:30"  # four real hours; the clock went back one


def test_a_checkpoint_can_have_its_own_ladder(definition: PathwayDefinition) -> None:
    got = moments(definition, "K9", oslo(2026, 12, 21, 9, 0))
    assert got["due_soon"] == oslo(2026, 12, 18, 9, 0)
    assert got["escalation"] == oslo(2027, 1, 4, 9, 0)  # 42 days after first contact: 14 after the target


def test_handover_checkpoints_escalate_an_unaccepted_task_at_the_deadline(definition: PathwayDefinition) -> None:
    due = oslo(2026, 12, 1, 10, 0)
    rungs = rung_times(definition, "K6", due.astimezone(timezone.utc))
    extra = [r for r in rungs if r.kind == HANDOVER_UNACCEPTED]
    assert len(extra) == 1 and extra[0].to == "coordinator" and extra[0].at == due
    assert not any(r.kind == HANDOVER_UNACCEPTED for r in rung_times(definition, "K3", due))


def test_crossed_returns_every_rung_passed_and_the_next_one(definition: PathwayDefinition) -> None:
    rungs = rung_times(definition, "K3", oslo(2026, 12, 1, 10, 0).astimezone(timezone.utc))
    due, nxt = crossed(rungs, oslo(2026, 12, 2, 12, 0))
    assert [r.kind for r in due] == ["due_soon", "due_now", "escalation"]
    assert nxt == oslo(2026, 12, 4, 10, 0)
    due, nxt = crossed(rungs, oslo(2027, 1, 1, 0, 0))
    assert len(due) == 4 and nxt is None


def test_a_step_without_a_deadline_is_never_looked_at(definition: PathwayDefinition) -> None:
    assert first_reminder_at(definition, "K13", None) is None
    assert first_reminder_at(definition, "K3", oslo(2026, 12, 1, 10, 0)) == oslo(2026, 11, 30, 10, 0)
