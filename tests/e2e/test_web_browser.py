"""The web pages in a real browser (Debian's Chromium, headless, driven by Playwright) against a real server.

A coordinator walks a case from first contact to closure with JavaScript turned off (the pages need none);
the police contact accepts and completes the handover; the manager sees the report change; a second browser
editing the same case gets the conflict message; a partner cannot reach a case page by URL. Every page passes
axe-core without serious or critical violations, works by keyboard, and holds together at 200% zoom.
A screenshot of each page is saved as a test artifact.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.e2e.web_support import ARTIFACTS, CHROMIUM, demo_server

SHOTS = ARTIFACTS / "screenshots"
PERSON = "Tora Oppdiktadottir Nettleser"  # synthetic: a name no one has


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_server(tmp_path_factory.mktemp("web")) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is required at {CHROMIUM} (apt-get install chromium); .ci/run installs it")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


def context(browser: Browser, base_url: str, **options: object) -> BrowserContext:
    options = {"viewport": {"width": 1280, "height": 900}, **options}
    ctx = browser.new_context(base_url=base_url, locale="nb-NO", **options)  # type: ignore[arg-type]
    ctx.set_default_timeout(15_000)
    return ctx


def sign_in(page: Page, username: str) -> None:
    page.goto("/login")
    page.get_by_label("Brukernavn").fill(username)
    page.get_by_label("Passord").fill("demo")
    page.get_by_role("button", name="Logg inn").click()
    expect(page.get_by_text(f"Logget inn som {username}")).to_be_visible()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def action(page: Page, summary: str) -> object:
    """Open the <details> whose summary is ``summary`` and return it (forms live inside)."""
    details = page.locator("details", has=page.locator("summary", has_text=re.compile(f"^{re.escape(summary)}$")))
    details.locator("summary").click()
    return details


def saved(page: Page) -> None:
    expect(page.get_by_role("status").filter(has_text="Lagret.")).to_be_visible()


def open_case(page: Page, name: str = PERSON) -> str:
    page.goto("/cases/new")
    page.get_by_label("Navn", exact=True).fill(name)
    page.get_by_role("button", name="Opprett sak").click()
    page.wait_for_url(re.compile(r"/cases/[A-Z]+-\d{4}-\d+$"))
    return page.url.rsplit("/", 1)[1]


# -- the walk --------------------------------------------------------------------------------------------------


def test_a_case_from_first_contact_to_closure_with_a_handover_to_the_police(browser: Browser, base_url: str) -> None:
    coordinator = context(browser, base_url, java_script_enabled=False).new_page()
    sign_in(coordinator, "koordinator")
    shot(coordinator, "01-dashboard")
    reference = open_case(coordinator)
    expect(coordinator.get_by_role("heading", level=1)).to_contain_text(reference)
    shot(coordinator, "02-case-opened")

    for code in ("K1", "K2"):
        form = action(coordinator, f"Fullfør {code}")
        form.get_by_label("Merknad").fill(f"utført i samtale ({code})")  # type: ignore[attr-defined]
        form.get_by_role("button", name=f"Fullfør {code}").click()  # type: ignore[attr-defined]
        saved(coordinator)

    form = action(coordinator, "Tildel koordinator")
    form.get_by_label("Koordinator").select_option("koordinator")  # type: ignore[attr-defined]
    form.get_by_role("button", name="Tildel").click()  # type: ignore[attr-defined]
    saved(coordinator)

    # Consent given now and the handover, in one form: the scope the police need comes ticked.
    form = action(coordinator, "Send overlevering: Politiet (K6)")
    form.get_by_role("button", name="Send overlevering").click()  # type: ignore[attr-defined]
    saved(coordinator)
    handovers = coordinator.locator("section", has=coordinator.get_by_role("heading", name="Overleveringer"))
    expect(handovers.get_by_role("row", name=re.compile("K6"))).to_contain_text("forespurt")

    form = action(coordinator, "Sett klokken på pause")
    form.get_by_label("Begrunnelse (påkrevd)").fill("personen er innlagt på sykehus")  # type: ignore[attr-defined]
    form.get_by_role("button", name="Pause").click()  # type: ignore[attr-defined]
    saved(coordinator)
    expect(coordinator.locator(".case-meta")).to_contain_text("Klokken står på pause siden")
    shot(coordinator, "03-case-paused")
    form = action(coordinator, "Start klokken igjen")
    form.get_by_role("button", name="Fortsett").click()  # type: ignore[attr-defined]
    saved(coordinator)

    form = action(coordinator, "Hopp over K7")
    form.get_by_label("Begrunnelse (påkrevd)").fill("har egen inntekt, ikke aktuelt")  # type: ignore[attr-defined]
    form.get_by_label("Jeg forstår at dette ikke kan angres").check()  # type: ignore[attr-defined]
    form.get_by_role("button", name="Hopp over K7").click()  # type: ignore[attr-defined]
    saved(coordinator)

    # The police contact sees the task, with only what the handover needs, and accepts then completes it.
    police = context(browser, base_url, java_script_enabled=False).new_page()
    sign_in(police, "politi")
    task = police.locator("article", has_text=reference)
    expect(task).to_contain_text(PERSON)  # the consent's scope includes the name
    shot(police, "04-partner-tasks")
    task.get_by_role("button", name="Godta").click()
    saved(police)
    task = police.locator("article", has_text=reference)
    expect(task).to_contain_text("godtatt")
    task.locator("summary", has_text="Fullfør").click()
    task.get_by_label("Merknad").fill("kontakt opprettet, tiltak iverksatt")
    task.get_by_role("button", name="Fullfør").click()
    saved(police)
    expect(police.locator("article", has_text=reference)).to_contain_text("fullført")
    # ... and cannot open the case page by its address: it is as if it did not exist.
    response = police.goto(f"/cases/{reference}")
    assert response is not None and response.status == 404
    expect(police.get_by_role("heading", level=1)).to_have_text("Fant ikke siden")

    coordinator.reload()
    expect(handovers.get_by_role("row", name=re.compile("K6"))).to_contain_text("fullført")
    for destination in ("Oppfølging og overleveringer", "Reetablering"):
        form = action(coordinator, "Endre fase")
        form.get_by_role("button", name=f"Gå til: {destination}").click()  # type: ignore[attr-defined]
        saved(coordinator)
        expect(coordinator.get_by_role("heading", level=1)).to_contain_text(destination)

    form = action(coordinator, "Avslutt saken")
    form.get_by_label("Utfall").select_option(label="Trygg bolig")  # type: ignore[attr-defined]
    form.get_by_label("Jeg forstår at dette ikke kan angres").check()  # type: ignore[attr-defined]
    form.get_by_role("button", name="Avslutt").click()  # type: ignore[attr-defined]
    saved(coordinator)
    expect(coordinator.locator(".case-meta")).to_contain_text("Saken er avsluttet.")
    timeline = coordinator.locator("table.timeline")
    for said in ("personen er innlagt på sykehus", "har egen inntekt, ikke aktuelt", "Hoppet over", "Satt på pause",
                 "Overlevering oppdatert", "Avsluttet"):
        expect(timeline).to_contain_text(said)
    shot(coordinator, "05-case-closed")


def test_a_second_browser_editing_the_same_case_gets_the_conflict_message(browser: Browser, base_url: str) -> None:
    first = context(browser, base_url).new_page()
    second = context(browser, base_url).new_page()
    sign_in(first, "koordinator")
    sign_in(second, "koordinator")
    reference = open_case(first, "Tora Samtidig Testesen")
    second.goto(f"/cases/{reference}")  # both now show the same version

    form = action(first, "Sett klokken på pause")
    form.get_by_label("Begrunnelse (påkrevd)").fill("venter på tolk")  # type: ignore[attr-defined]
    form.get_by_role("button", name="Pause").click()  # type: ignore[attr-defined]
    saved(first)

    form = action(second, "Fullfør K1")
    form.get_by_label("Merknad").fill("kartlegging gjort")  # type: ignore[attr-defined]
    form.get_by_role("button", name="Fullfør K1").click()  # type: ignore[attr-defined]
    alert = second.get_by_role("alert")
    expect(alert).to_contain_text("Noen andre endret saken mens du arbeidet med den")
    shot(second, "06-case-conflict")
    alert.get_by_role("link", name="Last inn saken på nytt").click()
    expect(second.locator(".case-meta")).to_contain_text("Klokken står på pause siden")
    steps = second.locator("section", has=second.get_by_role("heading", name="Steg"))
    expect(steps.get_by_role("row", name=re.compile("^K1 "))).not_to_contain_text("utført")  # nothing was saved


def test_the_manager_sees_the_report_change_when_a_case_is_opened(browser: Browser,
                                                                 tmp_path_factory: pytest.TempPathFactory) -> None:
    # A server without demo cases: how many of the demo's fall in the current month, and which cells the
    # complementary suppression hides to protect them, depends on the date. Here the month holds only what the test
    # opens, on any date.
    with demo_server(tmp_path_factory.mktemp("report"), cases=0) as empty:
        manager = context(browser, empty).new_page()
        sign_in(manager, "leder")
        # The adult pathway's cases opened (each pathway's figures are in a section of their own).
        opened = manager.locator('section[aria-labelledby="cases-krisesenter-h"]')

        def opened_this_period() -> str:
            return opened.locator("tbody tr").last.locator("td").first.inner_text()

        assert opened_this_period() == "0"
        coordinator = context(browser, empty).new_page()
        sign_in(coordinator, "koordinator")
        open_case(coordinator, "Tora Rapport Testesen")
        manager.reload()
        assert opened_this_period() == "færre enn 5: skjult"
        for n in range(4):
            open_case(coordinator, f"Tora Rapport Fyllesen {n}")
        manager.reload()
        assert opened_this_period() == "5"
        open_case(coordinator, "Tora Rapport Sistesen")
        manager.reload()
        assert opened_this_period() == "6"
        # Every figure of the adult's pathway, each with its table (the child's pathway has its own, but the
        # return to the abuser, which is not its outcome).
        expect(manager.locator('section[aria-labelledby="pathway-krisesenter-h"] svg.chart')).to_have_count(9)
        expect(manager.locator('section[aria-labelledby="pathway-barn-h"] svg.chart')).to_have_count(8)
        shot(manager, "07-manager-report")
        with manager.expect_download() as download:
            manager.get_by_role("link", name="Last ned CSV").click()
        assert download.value.suggested_filename == "forlop-timeliness.csv"


# -- every page: axe-core, keyboard, 200% zoom -------------------------------------------------------------------

PAGES = {  # who sees which pages
    "koordinator": ["/cases", "/cases/new", "{case}", "/inbox", "/cases/BGO-0000-0000", "/calendar"],
    "politi": ["/tasks", "/inbox"],
    "leder": ["/reports", "/inbox"],
    "admin": ["/admin/users", "/admin/definitions", "/admin/access?case={reference}", "/admin/retention", "/inbox"],
}
SERIOUS = {"serious", "critical"}


def _a_case(page: Page) -> str:
    page.goto("/cases")
    return page.locator("table.cases tbody th a").first.inner_text()


@pytest.mark.any_date  # layout and accessibility
@pytest.mark.parametrize("zoom", [1, 2], ids=["100%", "200%"])
def test_every_page_passes_axe_and_holds_together_at_200_percent(browser: Browser, base_url: str,
                                                                 zoom: int) -> None:
    # 200% zoom: the same screen in CSS pixels halves, which is what a browser's zoom does to the layout.
    ctx = context(browser, base_url, viewport={"width": 1280 // zoom, "height": 900 // zoom},
                  device_scale_factor=zoom)
    page = ctx.new_page()
    page.goto("/login")
    found = _violations(page) + _overflow(page)
    if zoom == 1:
        shot(page, "00-login")
    reference = ""
    for user, paths in PAGES.items():
        sign_in(page, user)
        if user == "koordinator":
            reference = _a_case(page)
        for path in paths:
            target = path.format(case=f"/cases/{reference}", reference=reference)
            page.goto(target)
            found += [f"{user} {target}: {v}" for v in _violations(page) + _overflow(page)]
            if zoom == 1:
                shot(page, f"page-{user}-{target.strip('/').replace('/', '-').split('?')[0] or 'home'}")
        page.get_by_role("button", name="Logg ut").click()
        expect(page.get_by_role("status")).to_contain_text("Du er logget ut.")
    # The definition validation page showing problems inline.
    sign_in(page, "admin")
    page.goto("/admin/definitions")
    page.get_by_label("Definisjon (YAML)").fill("id: x\nversion: 0\nphases: []\n")
    page.get_by_role("button", name="Valider").click()
    expect(page.get_by_role("alert")).to_contain_text("feil")
    found += [f"admin validation: {v}" for v in _violations(page) + _overflow(page)]
    if zoom == 1:
        shot(page, "page-admin-definitions-invalid")
    assert not found, "\n".join(found)


def _violations(page: Page) -> list[str]:
    result = Axe().run(page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a",
                                                                            "wcag21aa", "best-practice"]}})
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result.response["violations"] if v.get("impact") in SERIOUS]


def _overflow(page: Page) -> list[str]:
    wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    return [f"the page scrolls sideways by {wide}px"] if wide > 1 else []


@pytest.mark.any_date  # layout and accessibility
def test_the_pages_work_by_keyboard_alone(browser: Browser, base_url: str) -> None:
    page = context(browser, base_url).new_page()
    page.goto("/login")

    def tab_to(predicate: str, limit: int = 60) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(f"(() => {{ const e = document.activeElement; return {predicate}; }})()"):
                return
        raise AssertionError(f"no focusable element where {predicate}")

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Hopp til innholdet"  # the skip link comes first
    tab_to("e.id === 'username'")
    page.keyboard.type("koordinator")
    page.keyboard.press("Tab")
    page.keyboard.type("demo")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Logget inn som koordinator")).to_be_visible()

    tab_to("e.tagName === 'A' && e.textContent === 'Opprett sak'")
    page.keyboard.press("Enter")
    page.wait_for_url("**/cases/new")
    tab_to("e.id === 'person_name'")
    page.keyboard.type("Tora Tastatur Testesen")
    tab_to("e.tagName === 'BUTTON' && e.textContent.trim() === 'Opprett sak'")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/cases/[A-Z]+-\d{4}-\d+$"))

    tab_to("e.tagName === 'SUMMARY' && e.textContent.trim() === 'Fullfør K1'")
    page.keyboard.press("Enter")  # opens the form
    page.keyboard.press("Tab")
    page.keyboard.type("gjort med tastaturet")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    saved(page)
    steps = page.locator("section", has=page.get_by_role("heading", name="Steg"))
    expect(steps.get_by_role("row", name=re.compile("^K1 "))).to_contain_text("utført")


def test_english_is_one_click_away(browser: Browser, base_url: str) -> None:
    page = context(browser, base_url).new_page()
    sign_in(page, "koordinator")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("My unit's cases")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_role("link", name="Norsk (bokmål)").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sakene i min enhet")


def test_the_api_docs_work_with_nothing_from_another_site(browser: Browser, base_url: str) -> None:
    """Swagger UI at /docs lists the operations and calls the API (sign-in included) under the pages' strict
    Content-Security-Policy: every request goes to this server, none fails, and nothing is blocked."""
    page = context(browser, base_url).new_page()
    requests: list[str] = []
    failed: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
    page.on("response", lambda r: failed.append(f"{r.url}: {r.status}") if r.status >= 400 else None)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)  # a CSP refusal is one
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto("/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() > 30

    page.get_by_role("button", name="Authorize").first.click()  # OAuth2 password flow against /api/v1/auth/token
    page.locator("#oauth_username").fill("koordinator")
    page.locator("#oauth_password").fill("demo")
    page.locator(".auth-btn-wrapper .authorize").click()
    expect(page.locator(".auth-container")).to_contain_text("Authorized")
    page.locator(".auth-btn-wrapper .btn-done").click()
    me = page.locator("#operations-authentication-me_api_v1_me_get")
    me.locator(".opblock-summary").click()
    me.get_by_role("button", name="Try it out").click()
    me.get_by_role("button", name="Execute").click()
    expect(me.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")
    expect(me.locator(".live-responses-table .microlight").first).to_contain_text('"koordinator"')
    shot(page, "api-docs")

    assert [url for url in requests if not url.startswith(base_url + "/")] == []
    assert failed == [] and errors == [], (failed, errors)
