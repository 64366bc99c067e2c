"""What is most urgent, through HTTP on the seeded world: the case list's urgent step and handover alerts (API and
the /cases page), the filters mine and due this week, sorting, and pages that say where they are."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pathway.views.deadlines import week_end

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, signed_in, synthetic_person  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]
K = "koordinator"


def cases(w: World, **params: Any) -> dict[str, Any]:
    r = w.client.get(f"{API}/cases", params={"limit": 200, **params}, headers=w.auth(K))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def page(w: World, **params: Any) -> str:
    client = signed_in(TestClient(w.app), K)
    r = client.get("/cases", params=params)
    assert r.status_code == 200, r.text
    return r.text


def test_each_listed_case_names_its_most_urgent_open_step_as_the_case_itself_shows(world: World) -> None:
    w = world
    listed = cases(w)["items"]
    with_step = [c for c in listed if c["urgent_step"]]
    assert with_step, "the seeded open cases should have deadlines"
    for c in listed:
        assert (c["urgent_step"] or {}).get("due_at") == c["next_due_at"], c["reference"]
    for c in with_step[:5]:
        detail = w.client.get(f"{API}/cases/{c['reference']}", headers=w.auth(K)).json()
        open_steps = [s for s in detail["steps"] if s["state"] in ("pending", "active") and s["due_at"]]
        earliest = min(datetime.fromisoformat(s["due_at"]) for s in open_steps)
        urgent = c["urgent_step"]
        assert datetime.fromisoformat(urgent["due_at"]) == earliest
        step = next(s for s in open_steps if s["code"] == urgent["code"])
        assert datetime.fromisoformat(step["due_at"]) == earliest and urgent["name"] == step["name"]


def test_a_police_decline_is_flagged_on_the_list_and_the_page(world: World) -> None:
    w = world
    reference, task_id = w.handover_case("police")
    assert cases(w, q=reference)["items"][0]["handover_alerts"] == []
    r = w.client.post(f"{API}/tasks/{task_id}/decline", json={"reason": "ikke vår kommune"}, headers=w.auth("politi"))
    assert r.status_code == 200
    [item] = cases(w, q=reference)["items"]
    assert [(a["code"], a["agency"], a["status"]) for a in item["handover_alerts"]] == [("K6", "police", "declined")]
    html = page(w, q=reference)
    row = re.search(rf'<tr[^>]*>\s*<th scope="row"><a href="/cases/{reference}">.*?</tr>', html, re.S)
    assert row is not None and "K6" in row.group(0) and "avslått" in row.group(0)


def test_mine_lists_only_the_cases_i_coordinate(world: World) -> None:
    w = world
    reference = w.open_case(synthetic_person())["reference"]
    w.operate(reference, "coordinator", {"coordinator": K})
    mine = cases(w, mine=True, status="all")["items"]
    assert reference in {c["reference"] for c in mine} and all(c["coordinator"] == K for c in mine)
    everyone = cases(w, status="all")["items"]
    assert {c["reference"] for c in mine} == {c["reference"] for c in everyone if c["coordinator"] == K}
    assert reference in page(w, who="mine", status="all")
    others = [c["reference"] for c in everyone if c["coordinator"] != K]
    assert others and not any(f'href="/cases/{o}"' in page(w, who="mine", status="all") for o in others[:3])


def test_due_this_week_is_every_open_case_due_before_monday_in_oslo(world: World) -> None:
    w = world
    start = week_end(datetime.now(timezone.utc))
    week = cases(w, due_this_week=True)["items"]
    everything = cases(w)["items"]
    end = week_end(datetime.now(timezone.utc))  # the same as start, unless the week ended during the request
    assert all(datetime.fromisoformat(c["next_due_at"]) < end for c in week)
    assert {c["reference"] for c in everything
            if c["next_due_at"] and datetime.fromisoformat(c["next_due_at"]) < start} <= {c["reference"] for c in week}


@pytest.mark.parametrize("sort", ["next_due", "opened_at", "reference", "phase"])
def test_every_sort_pages_in_both_directions_and_counts_where_each_page_is(world: World, sort: str) -> None:
    w = world
    for order in ("asc", "desc"):
        whole = cases(w, sort=sort, order=order, status="all")
        total = len(whole["items"])
        assert whole["total"] == total and whole["before"] == 0
        seen: list[str] = []
        cursor = None
        for _ in range(200):
            params: dict[str, Any] = {"sort": sort, "order": order, "status": "all", "limit": 7}
            if cursor:
                params["cursor"] = cursor
            r = w.client.get(f"{API}/cases", params=params, headers=w.auth(K)).json()
            assert (r["before"], r["total"]) == (len(seen), total)
            seen += [c["reference"] for c in r["items"]]
            cursor = r["next_cursor"]
            if cursor is None:
                break
        assert seen == [c["reference"] for c in whole["items"]], (sort, order)
    asc = [c["reference"] for c in cases(w, sort="reference", status="all")["items"]]
    assert asc == sorted(asc) and [c["reference"] for c in cases(w, sort="reference", order="desc",
                                                                  status="all")["items"]] == asc[::-1]


def test_the_page_sorts_by_plain_links_and_says_where_it_is(world: World) -> None:
    w = world
    total = cases(w)["total"]
    html = page(w)
    assert f"1–{min(total, 50)} av {total}" in html
    assert re.search(r'<th scope="col" aria-sort="ascending">\s*<a href="[^"]*sort=next_due&amp;order=desc', html)
    for key in ("reference", "phase", "opened_at"):
        assert f"sort={key}&amp;order=asc" in html
    urgent = [c for c in cases(w)["items"] if c["urgent_step"]][0]
    assert f"{urgent['urgent_step']['code']} · {urgent['urgent_step']['name']}" in html
    assert re.search(r"(dager?|timer?) over frist|frist (i dag|om)", html)
    by_reference = page(w, sort="reference", order="desc")
    refs = re.findall(r'<th scope="row"><a href="/cases/([^"]+)">', by_reference)
    assert refs == sorted(refs, reverse=True) and 'aria-sort="descending"' in by_reference


def test_a_paused_case_says_its_clock_is_stopped_not_how_late_it_is(world: World) -> None:
    w = world
    reference = w.open_case(synthetic_person())["reference"]
    w.operate(reference, "pause", {"reason": "personen er på sykehus"})
    [item] = cases(w, q=reference)["items"]
    assert item["paused"] and item["urgent_step"] is not None  # the API keeps the deadline; the page words it
    row = re.search(rf'<th scope="row"><a href="/cases/{reference}">.*?</tr>', page(w, q=reference), re.S)
    assert row is not None and "klokken står stille" in row.group(0)
    assert not re.search(r"over frist</span>|frist (i dag|om)", row.group(0))
