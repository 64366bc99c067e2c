"""A police contact's day and a NAV contact's day, walked in a real browser (Debian's Chromium) with JavaScript off, in
bokmål, against a real server (issue 14's done-when).

The server runs on a fresh database: the demo users only (`forlop demo --cases 0`), then cases and tasks made through
the services and the API (synthetic people; a task made ten days ago is overdue on any date), then `forlop serve`.

The police: the coordinator records a high threat level on a case and hands K6 over with the person's consent and a
note; the police contact sees the counts per status and an overdue task marked by text and symbol, filters to the
overdue ones, reads the high-risk task (same day, whom to call and their phone, the note, the scope in words, no
address), accepts and completes it, and declines the overdue one with a reason. The coordinator then sees the decline
in the inbox (the case and the agency, never the reason or the person), on the case list and on the case page, and on
the other case who accepted and completed, and when.

NAV: more than a page of tasks (60 open and some done, 50 a page); the coordinator sends K9 (housing) to NAV, not the
housing office, with a note; the NAV contact pages on with "Neste side", accepts and completes it; the coordinator's
case page shows K9 done and by whom. NAV cannot reach a police task by typing its id. Every page passes axe.
Screenshots for README: the police list with the same-day task, NAV's second page, the case page after the decline.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Locator, Page, expect

from api.app import create_app
from pathway import services
from pathway.case import Case
from pathway.case import commands as do
from pathway.people import PersonRecord
from tests.e2e.test_pages_in_bokmal import english_on
from tests.e2e.test_web_browser import (  # noqa: F401 (browser: the fixture)
    SHOTS, _overflow, _violations, browser, context, saved, shot, sign_in)
from tests.e2e.web_support import ROOT, demo_server

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, make_core, synthetic_person  # noqa: E402

SCREENSHOTS = ROOT / "docs" / "screenshots"
NAV_OPEN, NAV_DONE = 60, 5  # more than the page's 50
COORDINATOR_PHONE = "+47 099 00 001"  # the demo's first coordinator (pathway.demo.demo_phone(0))
POLICE_NOTE = "Ring koordinator før kl. 15"
K9_NOTE = "Trenger bolig før utflytting, ring koordinator"
DECLINE_REASON = "Grunn-4417: saken hører til et annet politidistrikt"  # never in a notice
OVERDUE_PERSON = "Tora Oppdiktadottir Fristløs"  # synthetic
COMPLETED_NOTE = "Tiltak iverksatt samme dag: voldsalarm utlevert"


@dataclass(frozen=True)
class Seeded:
    base_url: str
    high: str  # the case the coordinator will raise to high risk and hand to the police (has an address)
    high_person: dict[str, str]
    overdue: str  # a case whose police task was sent ten days ago
    overdue_task: str
    housing: str  # a case in support: K9 open
    nav_open: list[str]  # the open NAV tasks' ids


def _seed(url: str) -> dict[str, object]:
    """Through the services and the API (in process, before the server starts): the cases the walks need."""
    core = make_core(url)
    app = create_app(core)
    w = World(core=core, app=app, client=TestClient(app), lenient=TestClient(app, raise_server_exceptions=False))
    try:
        high_person = synthetic_person(name="Synne Oppdiktet Partnerdag")
        high = w.open_case(high_person)["reference"]

        # A police task sent ten days ago and never answered: past its deadline on any date.
        at = datetime.now(timezone.utc) - timedelta(days=10)
        overdue = services.open_case(
            uow=core.uow(), pathway_id="krisesenter", unit="bergen-sentrum", first_contact_at=at, actor="koordinator",
            keys=core.keys, index_key=core.settings.index_key, reference_prefix=core.settings.reference_prefix,
            at=at, person=PersonRecord(name=OVERDUE_PERSON, address="Påfunnveien 99, 0000 Ingenstedby")).reference

        def hand_over(case: Case) -> None:
            case.execute(do.RecordConsent("police", scope=("name", "contact", "threat_assessment"), given=True),
                         actor="koordinator", at=at)
            case.execute(do.CreateHandover("K6"), actor="koordinator", at=at)

        case = services.change_case(uow=core.uow(), reference=overdue, expected_version=None, change=hand_over)[0]
        overdue_task = str(case.handovers[-1].id)
        w.handover_case("police")  # a third police task, open and on time

        nav_open = []
        for n in range(NAV_OPEN + NAV_DONE):
            _, task = w.handover_case("nav")
            if n < NAV_OPEN:
                nav_open.append(str(task))
                continue
            for move, body in (("accept", {}), ("complete", {"note": "utbetalt"})):
                r = w.client.post(f"{API}/tasks/{task}/{move}", json=body, headers=w.auth("nav"))
                assert r.status_code == 200, r.text

        housing = w.open_case(synthetic_person())["reference"]
        for code in ("K1", "K2"):
            w.operate(housing, f"steps/{code}/complete")
        w.operate(housing, "transitions/start_support")
        w.operate(housing, "coordinator", {"coordinator": "koordinator"})
        return {"high": high, "high_person": high_person, "overdue": overdue, "overdue_task": overdue_task,
                "housing": housing, "nav_open": nav_open}
    finally:
        core.close()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """A fresh SQLite database (the browser tests' database, as web_support's demo server), seeded, and served."""
    made: dict[str, object] = {}
    with demo_server(tmp_path_factory.mktemp("partner-day"), cases=0,
                     prepare=lambda url: made.update(_seed(url))) as base:
        yield Seeded(base_url=base, **made)  # type: ignore[arg-type]


def in_bokmal(page: Page) -> None:
    assert not english_on(page.content()), (page.url, english_on(page.content()))


def checked_with_axe(browser: Browser, base_url: str, user: str, paths: list[str]) -> None:
    """The pages pass axe at 100% and hold together at 200% zoom (axe needs script: a context with it)."""
    for viewport, scale in (({"width": 1280, "height": 900}, 1), ({"width": 640, "height": 450}, 2)):
        page = context(browser, base_url, viewport=viewport, device_scale_factor=scale).new_page()
        sign_in(page, user)
        for path in paths:
            page.goto(path)
            assert _violations(page) == [], (viewport, path)
            assert _overflow(page) == [], (viewport, path)
        page.context.close()


def task_of(page: Page, reference: str, code: str = "K6") -> Locator:
    return page.locator("article.task", has=page.locator("h2", has_text=f"{reference} · {code}"))


def for_readme(name: str, target: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHOTS / f"{name}.png", SCREENSHOTS / target)


# -- the police contact's day ----------------------------------------------------------------------------------


def test_a_police_contacts_day(browser: Browser, seeded: Seeded) -> None:
    base_url, high, overdue = seeded.base_url, seeded.high, seeded.overdue

    # The coordinator: the threat level is high; consent and the handover to the police in one form, with a note.
    coordinator = context(browser, base_url, java_script_enabled=False).new_page()
    sign_in(coordinator, "koordinator")
    coordinator.goto(f"/cases/{high}")
    actions = coordinator.locator("section#actions")  # she takes the case: the police are told whom to call
    actions.locator("summary", has_text="Tildel koordinator").click()
    form = actions.locator("form[action$='/do/coordinator']")
    form.get_by_label(re.compile("^Koordinator")).select_option("koordinator")
    form.get_by_role("button", name="Tildel").click()
    saved(coordinator)
    risk = coordinator.locator("#risk")
    risk.locator("summary", has_text="Trusselnivå").click()
    risk.get_by_label("Høy", exact=True).check()
    risk.get_by_role("button", name="Lagre").click()
    saved(coordinator)
    expect(coordinator.locator(".case-meta")).to_contain_text("Høy risiko")
    handovers = coordinator.locator("section#handovers")
    handovers.locator("summary", has_text="Send overlevering: Politiet (K6)").click()
    form = handovers.locator("form", has=coordinator.locator("input[name=agency][value=police]"))
    expect(form.get_by_label("Samtykke gitt nå")).to_be_checked()
    form.locator("#handover-K6-police-note").fill(POLICE_NOTE)
    form.get_by_role("button", name="Send overlevering").click()
    coordinator.wait_for_url(re.compile(rf"/cases/{high}\?done=handover#handovers$"))
    row = coordinator.locator("section#handovers").get_by_role("row", name=re.compile("K6"))
    expect(row).to_contain_text("forespurt")
    expect(row).to_contain_text(POLICE_NOTE)
    in_bokmal(coordinator)

    # The police contact's list: counts per status, the overdue task marked by text and symbol.
    police = context(browser, base_url, java_script_enabled=False).new_page()
    sign_in(police, "politi")
    police.goto("/tasks")
    counts = police.locator("ul.counts")
    expect(counts.get_by_role("link", name=re.compile(r"^3 Åpne$"))).to_be_visible()
    expect(counts.get_by_role("link", name=re.compile(r"^1 ! Over frist$"))).to_be_visible()
    expect(counts.get_by_role("link", name=re.compile(r"^0 Godtatt$"))).to_be_visible()
    expect(police.locator("article.task")).to_have_count(3)
    late = task_of(police, overdue)
    expect(late).to_have_class(re.compile(r"\blate\b"))
    expect(late.locator(".badge-overdue")).to_have_text("! over frist")
    expect(late).to_contain_text(OVERDUE_PERSON)  # the consent shares the name, never the address
    assert "Påfunnveien" not in police.content()
    in_bokmal(police)

    # The high-risk task, read: same day, whom to call, the note, the scope in words, no address.
    task = task_of(police, high)
    expect(task.locator(".same-day")).to_have_text("⚠ Haster: tiltak samme dag")
    expect(task.locator(".urgency")).to_contain_text("Høy")
    expect(task.locator(".contact")).to_contain_text("koordinator")
    expect(task.locator(".contact a[href^='tel:']")).to_have_text(COORDINATOR_PHONE)
    expect(task.locator(".note")).to_have_text(POLICE_NOTE)
    expect(task).to_contain_text("Navn, Trygg kontaktkanal, Trusselvurdering")
    expect(task).to_contain_text("Samtykke")  # the basis, in words
    expect(task).to_contain_text(seeded.high_person["name"])
    text = task.inner_text()
    assert seeded.high_person["address"] not in text and "Påfunnveien" not in text
    assert not re.search(r"threat_assessment|consent_now|\bcontact\b|\bname\b", text), text
    shot(police, "partner-police-tasks")

    # Filtered to the overdue ones: only that one.
    counts.get_by_role("link", name=re.compile("Over frist")).click()
    police.wait_for_url(re.compile(r"/tasks\?overdue=true$"))
    expect(police.locator("article.task")).to_have_count(1)
    expect(task_of(police, overdue)).to_be_visible()
    expect(police.locator("ul.counts a[aria-current=page]")).to_contain_text("Over frist")
    in_bokmal(police)
    shot(police, "partner-police-overdue")

    # The overdue one is another district's: declined, with a reason, from the filtered list (which it then leaves).
    late = task_of(police, overdue)
    late.locator("summary", has_text="Avslå").click()
    late.get_by_label("Begrunnelse for å avslå").fill(DECLINE_REASON)
    late.get_by_role("button", name="Avslå").click()
    police.wait_for_url(re.compile(r"/tasks\?overdue=true&done=decline$"))
    saved(police)
    expect(police.locator("article.task")).to_have_count(0)
    in_bokmal(police)

    # The high-risk one: accepted, then completed with a note.
    police.goto("/tasks")
    task_of(police, high).get_by_role("button", name="Godta").click()
    saved(police)
    task = task_of(police, high)
    expect(task.locator("dd.status-accepted")).to_have_text("godtatt")
    task.locator("summary", has_text="Fullfør").click()
    task.get_by_label("Merknad").fill(COMPLETED_NOTE)
    task.get_by_role("button", name="Fullfør").click()
    saved(police)
    police.goto("/tasks?status=completed")
    task = task_of(police, high)
    expect(task.locator("dd.status-completed")).to_have_text("fullført")
    expect(task.locator(".reply")).to_have_text(COMPLETED_NOTE)
    in_bokmal(police)
    police.goto("/tasks?status=declined")
    expect(task_of(police, overdue).locator(".reply")).to_have_text(DECLINE_REASON)
    in_bokmal(police)
    police.context.close()

    # The coordinator: the decline in the inbox (the case and the agency; never the reason or the person) ...
    coordinator.goto("/inbox?view=list")
    inbox = coordinator.locator("main")
    notice = inbox.get_by_role("row", name=re.compile("Overlevering avslått av etaten"))
    expect(notice).to_have_count(1)
    expect(notice).to_contain_text(f"{overdue} K6")
    assert DECLINE_REASON not in inbox.inner_text() and "Grunn-4417" not in coordinator.content()
    for name in (OVERDUE_PERSON, seeded.high_person["name"]):
        assert name not in coordinator.content()
    in_bokmal(coordinator)
    # ... on the case list ...
    coordinator.goto(f"/cases?q={overdue}")
    row = coordinator.locator("table.cases tbody tr", has=coordinator.locator(f"a:text-is('{overdue}')"))
    expect(row.locator(".handover-alert")).to_contain_text("⚠ K6 · Politiet: avslått")
    in_bokmal(coordinator)
    # ... and on the case page: who declined, why, and what to do next.
    coordinator.goto(f"/cases/{overdue}")
    advice = coordinator.locator(".handover-next")
    expect(advice).to_have_text("⚠ Avslått av Politiet (K6). Be om overlevering på nytt, eller lukk steget med "
                                "begrunnelse.")
    answer = coordinator.locator("section#handovers").get_by_role("row", name=re.compile("K6")).locator(
        ".handover-answer")
    expect(answer).to_contain_text("Avslått av politi")
    expect(answer).to_contain_text(DECLINE_REASON)
    in_bokmal(coordinator)
    shot(coordinator, "coordinator-decline")
    coordinator.locator("section#handovers").screenshot(path=str(SHOTS / "coordinator-decline-handovers.png"))

    # The high-risk case: who accepted and who completed, and when.
    coordinator.goto(f"/cases/{high}")
    row = coordinator.locator("section#handovers").get_by_role("row", name=re.compile("K6"))
    expect(row.locator(".handover-answer")).to_contain_text(re.compile(r"Fullført av politi, \d{2}\.\d{2}\.\d{4}"))
    expect(row.locator(".handover-answer")).to_contain_text(COMPLETED_NOTE)
    timeline = coordinator.locator("section#timeline")
    for status in ("godtatt", "fullført"):
        line = timeline.get_by_role("row", name=re.compile(f"Overlevering oppdatert: {status}"))
        expect(line).to_have_count(1)
        expect(line.locator("td").nth(1)).to_have_text("politi")
        expect(line.locator("time")).to_have_text(re.compile(r"\d{2}\.\d{2}\.\d{4}"))
    expect(coordinator.locator("section#steps").get_by_role("row", name=re.compile("^K6 "))).to_contain_text(
        "utført")
    in_bokmal(coordinator)
    coordinator.context.close()

    checked_with_axe(browser, base_url, "politi", ["/tasks", "/tasks?overdue=true", "/tasks?status=declined"])
    checked_with_axe(browser, base_url, "koordinator", [f"/cases/{overdue}", f"/cases/{high}", "/cases", "/inbox"])
    for name, target in (("partner-police-tasks", "partner-police-tasks.png"),
                         ("coordinator-decline-handovers", "coordinator-decline.png")):
        for_readme(name, target)


# -- the NAV contact's day -------------------------------------------------------------------------------------


def test_a_nav_contacts_day(browser: Browser, seeded: Seeded) -> None:
    base_url, housing = seeded.base_url, seeded.housing

    # The coordinator sends K9 (housing) to NAV, not the housing office, with a note.
    coordinator = context(browser, base_url, java_script_enabled=False).new_page()
    sign_in(coordinator, "koordinator")
    coordinator.goto(f"/cases/{housing}#handovers")
    handovers = coordinator.locator("section#handovers")
    expect(handovers.locator("summary", has_text="Send overlevering: Boligkontoret (K9)")).to_be_visible()
    handovers.locator("summary", has_text="Send overlevering: NAV (K9)").click()
    form = handovers.locator("form", has=coordinator.locator("input[name=agency][value=nav]"))
    form.locator("#handover-K9-nav-note").fill(K9_NOTE)
    form.get_by_role("button", name="Send overlevering").click()
    coordinator.wait_for_url(re.compile(rf"/cases/{housing}\?done=handover#handovers$"))
    row = coordinator.locator("section#handovers").get_by_role("row", name=re.compile("K9"))
    expect(row).to_contain_text("NAV")
    expect(row).to_contain_text("forespurt")
    in_bokmal(coordinator)

    # NAV's list: 61 open, 50 a page; K9 (due in four weeks) is on the second page.
    nav = context(browser, base_url, java_script_enabled=False).new_page()
    sign_in(nav, "nav")
    nav.goto("/tasks")
    counts = nav.locator("ul.counts")
    expect(counts.get_by_role("link", name=re.compile(rf"^{NAV_OPEN + 1} Åpne$"))).to_be_visible()
    expect(counts.get_by_role("link", name=re.compile(rf"^{NAV_DONE} Fullført$"))).to_be_visible()
    expect(nav.locator("article.task")).to_have_count(50)
    expect(task_of(nav, housing, "K9")).to_have_count(0)
    expect(nav.get_by_role("link", name="Første side")).to_have_count(0)
    in_bokmal(nav)
    nav.get_by_role("link", name=re.compile("^Neste side")).click()
    nav.wait_for_url(re.compile(r"/tasks\?cursor="))
    expect(nav.locator("article.task")).to_have_count(NAV_OPEN + 1 + NAV_DONE - 50)
    expect(nav.get_by_role("link", name="Første side")).to_be_visible()
    expect(nav.get_by_role("link", name=re.compile("^Neste side"))).to_have_count(0)
    task = task_of(nav, housing, "K9")
    expect(task.locator(".note")).to_have_text(K9_NOTE)
    expect(task).to_contain_text("Navn, Trygg kontaktkanal, Økonomi")
    expect(task.locator(".contact a[href^='tel:']")).to_have_text(COORDINATOR_PHONE)
    in_bokmal(nav)
    shot(nav, "partner-nav-tasks")
    box, pager = task.bounding_box(), nav.locator("nav.pager").bounding_box()
    assert box is not None and pager is not None
    top = box["y"] - 16
    nav.screenshot(path=str(SHOTS / "partner-nav-page-two.png"), full_page=True,  # K9, the done ones, the pager
                   clip={"x": 0.0, "y": top, "width": 1280.0, "height": pager["y"] + pager["height"] + 16 - top})
    page_two = nav.url

    # Accepted and completed from the second page, which each answer returns to.
    task.get_by_role("button", name="Godta").click()
    saved(nav)
    assert "cursor=" in nav.url
    task = task_of(nav, housing, "K9")
    expect(task.locator("dd.status-accepted")).to_have_text("godtatt")
    task.locator("summary", has_text="Fullfør").click()
    task.get_by_label("Merknad").fill("Midlertidig bolig innvilget fra mandag")
    task.get_by_role("button", name="Fullfør").click()
    saved(nav)
    in_bokmal(nav)

    # NAV reaches no police task: not by the page's form, not by the API.
    csrf = nav.locator("input[name=csrf]").first.get_attribute("value")
    r = nav.request.post(f"/tasks/{seeded.overdue_task}/accept", form={"csrf": csrf or ""}, max_redirects=0)
    assert r.status == 404, r.status
    assert "Politiet" not in r.text() and seeded.overdue not in r.text()
    assert not english_on(r.text()), english_on(r.text())  # the refusal, in bokmål too
    token = httpx.post(f"{base_url}{API}/auth/token", data={"username": "nav", "password": "demo"}, timeout=10)
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    for path in (f"{API}/tasks/{seeded.overdue_task}", f"{API}/tasks/{seeded.overdue_task}/fhir"):
        assert httpx.get(base_url + path, headers=bearer, timeout=10).status_code == 404, path
    listed = httpx.get(f"{base_url}{API}/tasks", params={"limit": 200}, headers=bearer, timeout=10).json()
    assert {t["code"] for t in listed["items"]} <= {"K7", "K9"}, listed  # the police's overdue task is not NAV's
    assert seeded.overdue_task not in {t["id"] for t in listed["items"]}
    nav.context.close()

    # The coordinator's case page: K9 done, and by whom.
    coordinator.goto(f"/cases/{housing}")
    row = coordinator.locator("section#handovers").get_by_role("row", name=re.compile("K9"))
    expect(row.locator(".handover-answer")).to_contain_text(re.compile(r"Fullført av nav, \d{2}\.\d{2}\.\d{4}"))
    expect(coordinator.locator("section#steps").get_by_role("row", name=re.compile("^K9 "))).to_contain_text(
        "utført")
    in_bokmal(coordinator)
    coordinator.context.close()

    second = urlsplit(page_two)
    checked_with_axe(browser, base_url, "nav", ["/tasks", f"{second.path}?{second.query}", "/tasks?status=completed"])
    checked_with_axe(browser, base_url, "koordinator", [f"/cases/{housing}"])
    for_readme("partner-nav-page-two", "partner-nav-tasks.png")

