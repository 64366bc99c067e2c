"""A partner agency reaches every one of its tasks, however many (issue 14, item 2): 250 open NAV handovers and some
answered ones, on SQLite and PostgreSQL, paged by cursor through the API and through the /tasks page, with no task
twice and none left out; the open ones first, by deadline, then the others, the last changed first; the filters and
the counts per status agree with the database."""

from __future__ import annotations

import base64
import html
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from pathway import services
from pathway.case import Case
from pathway.case import commands as do
from pathway.store.tables import handover_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, signed_in  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

OPEN_MADE, COMPLETED_MADE, DECLINED_MADE = 250, 15, 10
OPEN = ("requested", "accepted")
FAR = datetime(9999, 12, 31, tzinfo=timezone.utc)
ARTICLE = re.compile(r'<article class="task card[^"]*" aria-labelledby="task-([0-9a-f-]+)">(.*?)</article>', re.S)
NEXT = re.compile(r'<a href="([^"]+)" rel="next">')


@dataclass(frozen=True)
class Task:
    id: str
    status: str
    due_at: datetime | None
    updated_at: datetime


@pytest.fixture(scope="module")
def made(world: World) -> list[str]:
    """275 bergen-sentrum cases, each with a K7 handover to NAV made through the services, three hours apart going
    back from now (so some deadlines have passed, some have not): 250 left open (every 25th of them accepted), 15
    completed and 10 declined. The ids of the open ones."""
    core, now = world.core, datetime.now(timezone.utc)
    started = time.perf_counter()
    open_ids = []
    for n in range(OPEN_MADE + COMPLETED_MADE + DECLINED_MADE):
        at = now - timedelta(hours=3 * n + 1)
        reference = services.open_case(
            uow=core.uow(), pathway_id="krisesenter", unit="bergen-sentrum", first_contact_at=at, actor="mottak",
            keys=core.keys, index_key=core.settings.index_key, reference_prefix="PAG", at=at).reference

        def hand_over(case: Case, at: datetime = at, n: int = n) -> None:
            case.execute(do.RecordConsent("nav", scope=("name", "contact", "finances"), given=True),
                         actor="koordinator", at=at)
            case.execute(do.CreateHandover("K7"), actor="koordinator", at=at)
            task = case.handovers[-1].id
            answered = at + timedelta(minutes=30)
            if n >= OPEN_MADE + COMPLETED_MADE:
                case.execute(do.UpdateHandover(task, "declined", note="ikke vår sak"), actor="nav", at=answered)
            elif n >= OPEN_MADE or n % 25 == 0:
                case.execute(do.UpdateHandover(task, "accepted"), actor="nav", at=answered)
                if n >= OPEN_MADE:
                    case.execute(do.UpdateHandover(task, "completed", note="utført"), actor="nav",
                                 at=answered + timedelta(minutes=n))

        case = services.change_case(uow=core.uow(), reference=reference, expected_version=None, change=hand_over)[0]
        if n < OPEN_MADE:
            open_ids.append(str(case.handovers[-1].id))
    print(f"{len(open_ids)} open of {OPEN_MADE + COMPLETED_MADE + DECLINED_MADE} NAV handovers made through the "
          f"services in {time.perf_counter() - started:.1f} s on {world.backend}")
    return open_ids


def nav_tasks(world: World) -> list[Task]:
    """Every NAV task, from the database, in the order the list promises (worked out here, not by the view)."""
    with world.core.engine.connect() as conn:
        rows = conn.execute(sa.select(handover_t.c.id, handover_t.c.status, handover_t.c.due_at,
                                      handover_t.c.updated_at).where(handover_t.c.agency == "nav")).all()
    tasks = [Task(str(r.id), r.status, r.due_at, r.updated_at) for r in rows]
    still_open = sorted((t for t in tasks if t.status in OPEN), key=lambda t: (t.due_at or FAR, uuid.UUID(t.id)))
    done = sorted((t for t in tasks if t.status not in OPEN), key=lambda t: uuid.UUID(t.id))
    done.sort(key=lambda t: t.updated_at, reverse=True)  # stable: equal times stay in id order
    return still_open + done


def overdue(tasks: list[Task], now: datetime) -> list[Task]:
    return [t for t in tasks if t.status in OPEN and t.due_at is not None and t.due_at < now]


def api_pages(world: World, **params: Any) -> tuple[list[dict[str, Any]], int, dict[str, int]]:
    """Every task the API lists for NAV with ``params``, by following ``next``: (tasks, pages, the last counts)."""
    nav = world.auth("nav")
    found: list[dict[str, Any]] = []
    r = world.client.get(f"{API}/tasks", params=params, headers=nav)
    pages = 1
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        found += body["items"]
        if body["next"] is None:
            assert "link" not in r.headers
            return found, pages, body["counts"]
        assert r.headers["link"].endswith('>; rel="next"') and f"cursor={body['next']}" in r.headers["link"]
        following = r.headers["link"][1:-len('>; rel="next"')]  # the Link header's address carries the filters
        r = world.client.get(following, headers=nav)
        pages += 1


def page_walk(client: TestClient, address: str) -> tuple[list[str], list[str], int]:
    """The task ids the /tasks page shows from ``address`` on, following its "Neste side" links: (ids, the
    articles' bodies, pages)."""
    ids: list[str] = []
    bodies: list[str] = []
    pages = 0
    while address:
        r = client.get(address)
        assert r.status_code == 200, r.text
        pages += 1
        shown = ARTICLE.findall(r.text)
        ids += [task_id for task_id, _ in shown]
        bodies += [body for _, body in shown]
        link = NEXT.search(r.text)
        if link is not None:
            assert "Neste side" in r.text and "Første side" in r.text or pages == 1
        address = html.unescape(link.group(1)) if link else ""
    return ids, bodies, pages


def test_every_task_is_reached_once_through_the_pages_in_the_promised_order(world: World, made: list[str]) -> None:
    tasks, pages, _ = api_pages(world, limit=37)
    expected = nav_tasks(world)
    ids = [t["id"] for t in tasks]
    assert len(ids) == len(set(ids)), "a task came twice"
    assert ids == [t.id for t in expected]  # no gap, nothing extra, in order
    assert set(made) <= set(ids) and pages == -(-len(expected) // 37)
    statuses = [t["status"] for t in tasks]
    last_open = max(i for i, s in enumerate(statuses) if s in OPEN)
    assert all(s not in OPEN for s in statuses[last_open + 1:])  # every open task before every answered one
    deadlines = [datetime.fromisoformat(t["due_at"]) if t["due_at"] else FAR for t in tasks[:last_open + 1]]
    assert deadlines == sorted(deadlines)  # the overdue first
    changed = [t.updated_at for t in expected[last_open + 1:]]
    assert changed == sorted(changed, reverse=True) and len(changed) >= COMPLETED_MADE + DECLINED_MADE


def test_a_page_holds_50_tasks_unless_asked_and_never_more_than_200(world: World, made: list[str]) -> None:
    nav = world.auth("nav")
    first = world.client.get(f"{API}/tasks", headers=nav).json()
    assert len(first["items"]) == 50 and first["next"]
    assert len(world.client.get(f"{API}/tasks", params={"limit": 200}, headers=nav).json()["items"]) == 200
    assert world.client.get(f"{API}/tasks", params={"limit": 201}, headers=nav).status_code == 422
    assert world.client.get(f"{API}/tasks", params={"limit": 0}, headers=nav).status_code == 422


def test_the_filters_keep_what_they_name_in_the_same_order(world: World, made: list[str]) -> None:
    expected = nav_tasks(world)
    still_open, _, _ = api_pages(world, status="open", limit=60)
    assert [t["id"] for t in still_open] == [t.id for t in expected if t.status in OPEN]
    assert set(made) <= {t["id"] for t in still_open}
    answered, _, _ = api_pages(world, status=["completed", "declined"], limit=7)
    assert [t["id"] for t in answered] == [t.id for t in expected if t.status in ("completed", "declined")]
    assert {t["status"] for t in answered} == {"completed", "declined"}
    accepted, _, _ = api_pages(world, status="accepted")
    assert [t["id"] for t in accepted] == [t.id for t in expected if t.status == "accepted"]
    late, _, _ = api_pages(world, overdue="true", limit=45)
    now = datetime.now(timezone.utc)
    assert [t["id"] for t in late] == [t.id for t in overdue(expected, now)]
    assert 0 < len(late) < len(still_open)  # some of the 250 are past their deadline, some are not
    none, _, _ = api_pages(world, status="completed", overdue="true")
    assert none == []  # only an open task can be late


def test_the_counts_per_status_agree_with_the_database_whatever_the_filter(world: World, made: list[str]) -> None:
    expected = nav_tasks(world)
    _, _, counts = api_pages(world, status="cancelled")
    now = datetime.now(timezone.utc)
    assert counts == {**{s: sum(t.status == s for t in expected)
                         for s in ("requested", "accepted", "declined", "completed", "cancelled")},
                      "overdue": len(overdue(expected, now))}
    assert counts["requested"] + counts["accepted"] >= OPEN_MADE and counts["completed"] >= COMPLETED_MADE


@pytest.mark.parametrize("cursor", ["not-a-cursor", "", "W10=", base64.urlsafe_b64encode(b'["2", "x", "y"]').decode(),
                                    base64.urlsafe_b64encode(b'["0", "2026-01-01T00:00:00", "0"]').decode(),
                                    base64.urlsafe_b64encode(b'["7", "2026-01-01T00:00:00+00:00", '
                                                             b'"00000000-0000-0000-0000-000000000000"]').decode()])
def test_a_cursor_the_list_did_not_hand_out_is_refused_in_the_readers_language(world: World, cursor: str) -> None:
    r = world.client.get(f"{API}/tasks", params={"cursor": cursor}, headers=world.auth("nav"))
    if cursor == "":  # no cursor at all: the first page
        assert r.status_code == 200 and r.json()["items"]
        return
    assert r.status_code == 422 and r.json()["code"] == "invalid-argument", r.text
    assert "markør" in r.json()["detail"]
    english = world.client.get(f"{API}/tasks", params={"cursor": cursor},
                               headers={**world.auth("nav"), "Accept-Language": "en"}).json()["detail"]
    assert "not a cursor" in english


def test_an_unknown_status_is_refused(world: World) -> None:
    r = world.client.get(f"{API}/tasks", params={"status": "lost"}, headers=world.auth("nav"))
    assert r.status_code == 422


def test_the_page_reaches_every_task_by_its_next_page_links(world: World, made: list[str]) -> None:
    nav = signed_in(TestClient(world.app), "nav")
    expected = nav_tasks(world)
    ids, _, pages = page_walk(nav, "/tasks")
    assert len(ids) == len(set(ids)) and ids == [t.id for t in expected] and pages > 5
    still_open, _, _ = page_walk(nav, "/tasks?status=open")
    assert still_open == [t.id for t in expected if t.status in OPEN] and set(made) <= set(still_open)
    done, _, _ = page_walk(nav, "/tasks?status=completed")
    assert done == [t.id for t in expected if t.status == "completed"]


def test_the_pages_overdue_filter_shows_only_late_tasks_marked_so(world: World, made: list[str]) -> None:
    nav = signed_in(TestClient(world.app), "nav")
    ids, bodies, _ = page_walk(nav, "/tasks?overdue=true")
    assert ids == [t.id for t in overdue(nav_tasks(world), datetime.now(timezone.utc))] and ids
    assert all("! over frist" in body for body in bodies)


def test_the_page_counts_each_status_and_links_each_filter(world: World, made: list[str]) -> None:
    nav = signed_in(TestClient(world.app), "nav")
    expected = nav_tasks(world)
    page = nav.get("/tasks?status=open").text
    shown = {html.unescape(label.strip()): (html.unescape(href), int(n), bool(current)) for href, current, n, label in
             re.findall(r'<li><a href="([^"]+)"( aria-current="page")?><span class="num">(\d+)</span> ([^<]+)</a>',
                        page)}
    count = {s: sum(t.status == s for t in expected) for s in ("accepted", "completed", "declined", "cancelled")}
    assert shown == {
        "Åpne": ("/tasks?status=open", sum(t.status in OPEN for t in expected), True),
        "! Over frist": ("/tasks?overdue=true", len(overdue(expected, datetime.now(timezone.utc))), False),
        "Godtatt": ("/tasks?status=accepted", count["accepted"], False),
        "Fullført": ("/tasks?status=completed", count["completed"], False),
        "Avslått": ("/tasks?status=declined", count["declined"], False),
        "Avbrutt": ("/tasks?status=cancelled", count["cancelled"], False),
        "Alle": ("/tasks", len(expected), False)}


def test_an_answer_on_a_later_page_returns_to_that_page_and_filter(world: World, made: list[str]) -> None:
    nav = signed_in(TestClient(world.app), "nav")
    first = nav.get("/tasks?status=open").text
    second_address = html.unescape(NEXT.search(first).group(1))  # type: ignore[union-attr]
    second = nav.get(second_address).text
    task_id, _ = ARTICLE.findall(second)[0]
    form = re.search(rf'<form method="post" action="(/tasks/{task_id}/(?:accept|decline)[^"]*)"', second)
    assert form is not None
    action = html.unescape(form.group(1))
    csrf = re.search(r'name="csrf" value="([^"]+)"', second)
    r = nav.post(action, data={"csrf": csrf.group(1) if csrf else "", "reason": "ikke vår sak"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    back = r.headers["location"]
    assert back.startswith("/tasks?") and "status=open" in back and "cursor=" in back and "done=" in back
    assert nav.get(back).status_code == 200
