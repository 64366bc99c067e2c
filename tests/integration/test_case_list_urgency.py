"""The case list's "what is most urgent" on SQLite and PostgreSQL, at fixed moments: each case's most urgent open
step, its declined and unanswered handovers, due this week, sorting by phase, and counted pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from pathway import services
from pathway.bootstrap import Forlop
from pathway.case import Case
from pathway.case.commands import Advance, CompleteStep, CreateHandover, RecordConsent, UpdateHandover
from pathway.views.cases import case_list
from pathway.views.deadlines import week_end

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)  # Monday 09:00 in Oslo
UNIT = "testenhet"
POLICE_SCOPE = ["name", "contact", "threat_assessment"]


def open_case(core: Forlop, at: datetime = T0) -> str:
    return services.open_case(
        uow=core.uow(), pathway_id="krisesenter", unit=UNIT, first_contact_at=at, actor="k1", keys=core.keys,
        index_key=core.settings.index_key, reference_prefix="TST", at=at).reference


def change(core: Forlop, ref: str, fn: Callable[[Case], Any]) -> Any:
    return services.change_case(uow=core.uow(), reference=ref, expected_version=None, change=fn)[1]


def listed(core: Forlop, now: datetime, **kw: Any) -> dict[str, dict[str, Any]]:
    with core.engine.connect() as conn:
        page = case_list(conn, unit=UNIT, now=now, limit=None, **kw)
    return {c["reference"]: c for c in page.items}


def handover(core: Forlop, ref: str, at: datetime) -> Any:
    change(core, ref, lambda c: c.execute(RecordConsent("police", scope=POLICE_SCOPE, given=True), actor="k1", at=at))
    return change(core, ref, lambda c: c.execute(CreateHandover("K6"), actor="k1", at=at + timedelta(minutes=5)))


def test_each_case_shows_its_open_step_with_the_earliest_deadline(core: Forlop) -> None:
    ref = open_case(core)
    names = {("krisesenter", "K1"): "Kartlegging", ("krisesenter", "K2"): "Sikkerhetsplan"}
    now = T0 + timedelta(days=4)
    case = listed(core, now, names=lambda p, v, code: names.get((p, code)))[ref]
    # K1 and K2 are both due 24 hours after first contact: the first of the pathway comes first
    assert case["urgent_step"] == {"code": "K1", "name": "Kartlegging", "adhoc": False, "due_at": T0 + timedelta(days=1)}
    assert case["urgent_step"]["due_at"] == case["next_due_at"] and case["overdue"]
    change(core, ref, lambda c: c.execute(CompleteStep("K1", note="sent"), actor="k1", at=now))
    assert listed(core, now)[ref]["urgent_step"]["code"] == "K2"  # without names: the code
    assert listed(core, now)[ref]["urgent_step"]["name"] == "K2"


def test_a_declined_handover_is_flagged_while_its_step_is_open_and_until_asked_again(core: Forlop) -> None:
    ref = open_case(core)
    task_id = handover(core, ref, T0 + timedelta(hours=1))
    assert listed(core, T0 + timedelta(hours=2))[ref]["handover_alerts"] == []
    change(core, ref, lambda c: c.execute(UpdateHandover(task_id, "declined", note="ikke vår sak"), actor="p1",
                                          at=T0 + timedelta(hours=3)))
    [alert] = listed(core, T0 + timedelta(hours=4))[ref]["handover_alerts"]
    assert (alert["code"], alert["agency"], alert["status"]) == ("K6", "police", "declined")
    change(core, ref, lambda c: c.execute(CreateHandover("K6"), actor="k1", at=T0 + timedelta(hours=5)))
    assert listed(core, T0 + timedelta(hours=6))[ref]["handover_alerts"] == []


def test_an_unanswered_handover_is_flagged_once_its_deadline_has_passed_and_not_once_accepted(core: Forlop) -> None:
    ref, answered = open_case(core), open_case(core)
    handover(core, ref, T0 + timedelta(hours=1))
    task_id = handover(core, answered, T0 + timedelta(hours=1))
    change(core, answered, lambda c: c.execute(UpdateHandover(task_id, "accepted"), actor="p1",
                                               at=T0 + timedelta(hours=2)))
    with core.engine.connect() as conn:
        due = conn.execute(sa.text("SELECT min(due_at) FROM handover_task")).scalar_one()
    due = due if isinstance(due, datetime) else datetime.fromisoformat(due)
    due = due if due.tzinfo else due.replace(tzinfo=timezone.utc)
    before, after = due - timedelta(minutes=1), due + timedelta(minutes=1)
    assert listed(core, before)[ref]["handover_alerts"] == []
    [alert] = listed(core, after)[ref]["handover_alerts"]
    assert (alert["code"], alert["status"]) == ("K6", "unanswered")
    assert listed(core, after)[answered]["handover_alerts"] == []  # accepted: its lateness is the step's


def test_due_this_week_keeps_the_deadlines_before_monday_in_oslo_passed_ones_too(core: Forlop) -> None:
    # Thursday 26 November 2026: the week ends at Monday 30 November 00:00 in Oslo (23:00 UTC on Sunday).
    now = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    end = week_end(now)
    assert end == datetime(2026, 11, 29, 23, 0, tzinfo=timezone.utc)
    late = open_case(core, at=now - timedelta(days=3))  # K1 due Tuesday: passed
    sunday = open_case(core, at=end - timedelta(hours=25))  # K1 due Sunday 23:00 Oslo
    monday = open_case(core, at=end - timedelta(hours=23))  # K1 due Monday 01:00 Oslo: next week
    week = listed(core, now, due_before=end)
    assert late in week and sunday in week and monday not in week
    assert set(listed(core, now)) == {late, sunday, monday}


def test_sorting_by_phase_follows_the_pathway_then_the_deadline_and_pages_count(core: Forlop) -> None:
    refs = [open_case(core, at=T0 + timedelta(hours=i)) for i in range(5)]
    for ref in refs[:2]:  # two of them move on to the next phase
        for code in ("K1", "K2"):
            change(core, ref, lambda c, code=code: c.execute(CompleteStep(code), actor="k1", at=T0 + timedelta(hours=5)))
        change(core, ref, lambda c: c.execute(Advance("start_support"), actor="k1", at=T0 + timedelta(hours=6)))
    with core.engine.connect() as conn:
        order = ["intake", "support"]
        now = T0 + timedelta(hours=7)
        whole = case_list(conn, unit=UNIT, now=now, sort="phase", phase_order=order, limit=None).items
        assert [c["phase"] for c in whole] == sorted((c["phase"] for c in whole), key=order.index)
        assert [c["reference"] for c in whole if c["phase"] == "intake"] == refs[2:]  # then by next deadline
        backwards = case_list(conn, unit=UNIT, now=now, sort="phase", phase_order=order, descending=True,
                              limit=None).items
        assert backwards == whole[::-1]
        seen, counts, cursor = [], [], None
        for _ in range(5):
            page = case_list(conn, unit=UNIT, now=now, sort="phase", phase_order=order, descending=True,
                             limit=2, cursor=cursor, count=True)
            seen += [c["reference"] for c in page.items]
            counts.append((page.before, page.total))
            cursor = page.next_cursor
            if cursor is None:
                break
    assert seen == [c["reference"] for c in backwards]
    assert counts == [(0, 5), (2, 5), (4, 5)]


@pytest.mark.parametrize("cases", [2, 6])
def test_a_page_costs_the_same_few_statements_however_many_cases_it_holds(core: Forlop, cases: int) -> None:
    for i in range(cases):
        ref = open_case(core, at=T0 + timedelta(hours=i))
        if i % 2:
            handover(core, ref, T0 + timedelta(hours=i, minutes=10))
    statements: list[str] = []
    with core.engine.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", lambda *a: statements.append(a[2]))
        page = case_list(conn, unit=UNIT, now=T0 + timedelta(days=3), limit=50, count=True)
    assert len(page.items) == cases and all(c["urgent_step"] for c in page.items)
    assert sum(bool(c["handover_alerts"]) for c in page.items) == cases // 2
    # the count, the page, the urgent steps, the handover alerts: four, not one or two per case
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 4, statements
