"""Who hears of a reminder, and by which channels: the routing rule on plain facts, no database."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from notifications.routing import Candidate, Recipient, Reminder, managers_of, route_reminders

DUE = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
URL = "https://forlop.example.invalid/"

K1 = Candidate("k1", "coordinator", unit="Bergen sentrum", email="k1@example.invalid")
K2 = Candidate("k2", "coordinator", unit="Bergen sentrum")
M1 = Candidate("m1", "manager", unit="Bergen sentrum", webhook_url="https://hooks.example.invalid/m1")
P1 = Candidate("p1", "partner", agency="police", email="p1@example.invalid", webhook_url="https://hooks.example.invalid")
N1 = Candidate("n1", "partner", agency="nav", email="n1@example.invalid")
OTHER = Candidate("k9", "coordinator", unit="Oslo")
EVERYONE = [K1, K2, M1, P1, N1, OTHER]
AGENCIES = frozenset({"police", "nav", "child_welfare", "health"})  # the pathway's; crisis_centre, housing are roles


def reminder(to: str, *, owner: str | tuple[str, ...] = "police", coordinator: str | None = "k2",
             kind: str = "due_soon", holders: tuple[str, ...] = ("police",)) -> Reminder:
    """A reminder for a step owned by ``owner``; by default the police hold an open, consented task for it."""
    return Reminder(id=uuid.uuid4(), kind=kind, to=to, due_at=DUE, step_code="K6",
                    owners=(owner,) if isinstance(owner, str) else owner, case_reference="BGO-2026-0042",
                    unit="Bergen sentrum", coordinator=coordinator, agencies=AGENCIES, holders=frozenset(holders))


def route_one(r: Reminder, candidates: list[Candidate] = EVERYONE) -> tuple[Recipient, ...]:
    (found,) = route_reminders([r], candidates, public_url=URL)
    assert found.reminder_id == r.id
    return found.recipients


def test_a_reminder_to_the_owner_reaches_the_owning_agencys_contacts_by_every_channel_they_gave() -> None:
    assert route_one(reminder("owner")) == (Recipient("p1", ("email", "webhook")),)


def test_an_agency_without_a_task_it_may_act_on_hears_nothing_and_the_cases_coordinator_does() -> None:
    # No task, or a task no longer allowed (consent withdrawn or narrowed): the store leaves the agency out of holders.
    assert route_one(reminder("owner", holders=())) == (Recipient("k2", ()),)
    assert route_one(reminder("police", holders=())) == (Recipient("k2", ()),)  # a rung naming the agency
    assert route_one(reminder("police")) == (Recipient("p1", ("email", "webhook")),)


def test_without_a_case_coordinator_an_agency_without_a_task_falls_back_to_the_units_coordinators() -> None:
    assert route_one(reminder("owner", holders=(), coordinator=None)) == (Recipient("k1", ("email",)),
                                                                           Recipient("k2", ()))


def test_a_task_of_another_agency_does_not_let_the_owner_hear() -> None:
    assert route_one(reminder("owner", owner="nav", holders=("police",))) == (Recipient("k2", ()),)


def test_a_step_with_several_owners_reaches_only_the_agencies_holding_a_task_for_it() -> None:
    k9 = ("nav", "housing")  # NAV is an agency, housing a crisis-centre-side role with no users
    assert route_one(reminder("owner", owner=k9, holders=())) == (Recipient("k2", ()),)
    assert route_one(reminder("owner", owner=k9, holders=("nav",))) == (Recipient("n1", ("email",)),)
    both = route_one(reminder("owner", owner=("police", "nav"), holders=("nav",)))
    assert both == (Recipient("k2", ()), Recipient("n1", ("email",)))  # the police's part: the coordinator


def test_the_coordinator_is_named_once_however_many_agencies_lack_a_task() -> None:
    assert route_one(reminder("owner", owner=("police", "nav"), holders=())) == (Recipient("k2", ()),)


def test_a_holder_agency_with_no_contacts_falls_back_to_the_units_coordinators() -> None:
    assert route_one(reminder("owner"), [K1, K2, M1, OTHER]) == (Recipient("k1", ("email",)), Recipient("k2", ()))


def test_a_reminder_to_the_coordinator_reaches_the_cases_own_coordinator_by_the_inbox_alone() -> None:
    assert route_one(reminder("coordinator")) == (Recipient("k2", ()),)


def test_a_reminder_to_managers_gets_no_route_they_hear_of_it_in_the_daily_digest() -> None:
    to_managers, to_owner = reminder("manager", kind="manager_escalation"), reminder("owner")
    assert [r.reminder_id for r in route_reminders([to_managers, to_owner], EVERYONE, public_url=URL)] == [
        to_owner.id]


def test_what_a_unit_s_managers_should_hear_reaches_its_managers_else_its_coordinators() -> None:
    assert managers_of(EVERYONE, "Bergen sentrum") == [M1]
    assert managers_of([K2, K1, P1, OTHER], "Bergen sentrum") == [K1, K2]  # no manager: the coordinators, by name
    assert managers_of(EVERYONE, "Voss") == []


def test_a_reminder_nobody_fits_falls_back_to_the_units_coordinators() -> None:
    assert route_one(reminder("owner", owner="crisis_centre")) == (Recipient("k1", ("email",)), Recipient("k2", ()))
    assert route_one(reminder("coordinator", coordinator=None)) == (Recipient("k1", ("email",)), Recipient("k2", ()))


def test_a_reminder_with_no_candidate_at_all_is_routed_to_nobody() -> None:
    assert route_one(reminder("owner"), [OTHER]) == ()


def test_a_case_reminder_links_to_the_case_and_carries_the_payload_the_dispatcher_reads() -> None:
    (found,) = route_reminders([reminder("owner", kind="overdue")], EVERYONE, public_url=URL)
    assert found.payload() == {"kind": "overdue", "due_at": DUE.isoformat(),
                               "link": "https://forlop.example.invalid/cases/BGO-2026-0042",
                               "case_reference": "BGO-2026-0042", "step_code": "K6", "unit": "Bergen sentrum",
                               "count": 1}
