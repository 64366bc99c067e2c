"""The pages on paper and on a phone, in a real browser (Debian's Chromium, headless).

A printed case page is a summary for a cooperation meeting: the reference, the phase, the checkpoints with their
state and deadlines, the handovers and the timeline, without menus, forms or buttons and without the person's
safe contact channel or home municipality. Every page each role can reach fits a 360 px wide phone without
scrolling sideways and passes axe-core there; the person fields of the new-case form stay inside their form on a desktop screen. Screenshots and
the printed PDF are saved as test artifacts.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_web_browser import (  # noqa: F401 (browser: the fixture)
    _a_case, _overflow, _violations, browser, context, shot, sign_in)
# base_url: a demo with notifications in the inbox (its scan has run)
from tests.e2e.test_urgency_browser import base_url  # noqa: F401 (the fixture)
from tests.e2e.web_support import ARTIFACTS

pytestmark = pytest.mark.any_date  # layout and accessibility

PHONE = {"width": 360, "height": 800}


def _a_case_with_a_safe_contact(page: Page) -> tuple[str, str]:
    """A demo case whose person has a safe contact channel recorded: its reference and that channel."""
    page.goto("/cases?status=all")
    for reference in page.locator("table.cases tbody th a").all_inner_texts():
        page.goto(f"/cases/{reference}")
        contact = page.locator(".person dd.person-name + dt + dd")
        if contact.count() and contact.inner_text().startswith("+47"):
            return reference, contact.inner_text()
    raise AssertionError("the demo should have a case with a safe contact channel")


def test_a_printed_case_page_is_a_meeting_summary_without_forms_or_the_persons_contact(
        browser: Browser, base_url: str) -> None:
    ctx = context(browser, base_url)
    page = ctx.new_page()
    sign_in(page, "koordinator")
    reference, safe_contact = _a_case_with_a_safe_contact(page)
    expect(page.get_by_text(safe_contact, exact=True)).to_be_visible()  # on screen, the coordinator sees it
    checkpoints = page.locator("section[aria-labelledby='steps-h'] tbody th").all_inner_texts()
    assert checkpoints

    page.emulate_media(media="print")
    for hidden in ("a.skip", "header nav", ".menu", "#unread-count", ".me", "form", "button", "details",
                   "section[aria-labelledby='actions-h']"):
        for element in page.locator(hidden).all():
            expect(element).not_to_be_visible()
    expect(page.get_by_text(safe_contact, exact=True)).not_to_be_visible()
    for where in ("Trygg kontaktkanal", "Hjemkommune"):
        expect(page.locator(".person dt", has_text=where)).not_to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text(reference)
    expect(page.locator(".person .person-name")).to_be_visible()
    for checkpoint in checkpoints:
        expect(page.locator("section[aria-labelledby='steps-h'] tbody th", has_text=checkpoint)).to_be_visible()
    for section in ("handovers-h", "timeline-h", "pathway-h"):
        expect(page.locator(f"#{section}")).to_be_visible()
    assert _overflow(page) == []  # nothing is cut off at the page's right edge

    shot(page, "print-case")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.pdf(path=str(ARTIFACTS / "print-case.pdf"), format="A4", print_background=False)
    assert (ARTIFACTS / "print-case.pdf").stat().st_size > 10_000
    ctx.close()


# Every page each role can reach; {case} is a case of the coordinator's unit.
PAGES = {
    "koordinator": ["/cases", "/cases?status=all&sort=phase", "{case}", "/cases/new", "/inbox", "/inbox?view=list",
                    "/calendar", "/cases/BGO-0000-0000"],
    "politi": ["/tasks", "/inbox"],
    "leder": ["/reports", "/inbox"],
    "admin": ["/admin/users", "/admin/definitions", "/admin/access?case={reference}", "/inbox"],
}


def _name(path: str) -> str:
    return path.strip("/").replace("/", "-").replace("?", "-").replace("&", "-").replace("=", "-") or "home"


def _search_by_name(page: Page, name: str) -> None:
    page.goto("/cases")
    page.get_by_role("textbox", name="Finn en sak på personens navn").fill(name)
    page.get_by_role("button", name="Finn").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Saker funnet på navn")


def test_every_page_fits_a_360_px_phone_without_scrolling_sideways(browser: Browser, base_url: str) -> None:
    ctx = context(browser, base_url, viewport=PHONE)
    page = ctx.new_page()
    page.goto("/login")
    found = [f"/login: {v}" for v in _violations(page) + _overflow(page)]
    shot(page, "phone-login")
    reference = ""
    for user, paths in PAGES.items():
        sign_in(page, user)
        if user == "koordinator":
            reference, _ = _a_case_with_a_safe_contact(page)
            name = page.locator(".person .person-name").inner_text()
        for path in paths:
            target = path.format(case=f"/cases/{reference}", reference=reference)
            page.goto(target)
            found += [f"{user} {target}: {v}" for v in _violations(page) + _overflow(page)]
            shot(page, f"phone-{user}-{_name(path.format(case='case', reference='case'))}")
        if user == "koordinator":
            _search_by_name(page, name)
            found += [f"{user} search: {v}" for v in _violations(page) + _overflow(page)]
            shot(page, "phone-koordinator-search")
        page.get_by_role("button", name="Logg ut").click()
        expect(page.get_by_role("status")).to_contain_text("Du er logget ut.")
    assert not found, "\n".join(found)
    ctx.close()


def test_the_name_search_holds_together_at_200_percent(browser: Browser, base_url: str) -> None:
    """The search result is a posted form's answer, so the shared zoom test's list of addresses cannot reach it."""
    ctx = context(browser, base_url, viewport={"width": 640, "height": 450}, device_scale_factor=2)
    page = ctx.new_page()
    sign_in(page, "koordinator")
    _a_case_with_a_safe_contact(page)
    _search_by_name(page, page.locator(".person .person-name").inner_text())
    expect(page.locator("table.cases tbody th a")).not_to_have_count(0)
    found = _violations(page) + _overflow(page)
    assert not found, "\n".join(found)
    ctx.close()


def test_the_person_fields_stay_inside_the_new_case_form_and_the_case_page(browser: Browser, base_url: str) -> None:
    ctx = context(browser, base_url)
    page = ctx.new_page()
    sign_in(page, "koordinator")
    page.goto("/cases/new")
    shot(page, "desktop-case-new")
    fieldset = page.locator("fieldset", has=page.locator("#person_name"))
    box = fieldset.bounding_box()
    assert box is not None
    fields = fieldset.locator("input, select").all()
    assert len(fields) >= 6
    lefts = set()
    for field in fields:
        inner = field.bounding_box()
        assert inner is not None
        assert box["x"] <= inner["x"] and inner["x"] + inner["width"] <= box["x"] + box["width"], field
        lefts.add(round(inner["x"]))
    assert len(lefts) == 1, f"the person fields should line up under each other: {lefts}"

    # ... and on the case page, a long value stays inside the person's section (synthetic: no one's channel)
    page.locator("#person_name").fill("Tora Lang Kontaktsen")
    page.locator("#person_safe_contact").fill("signal-brukernavn-" + "oppdiktet" * 12)
    page.locator("#person_interpreter_language").fill("nordsamisk")
    page.get_by_role("button", name="Opprett sak").click()
    expect(page.locator(".person .person-name")).to_have_text("Tora Lang Kontaktsen")
    shot(page, "desktop-case")
    outside = page.evaluate("""() => {
        const card = document.querySelector('.person').getBoundingClientRect();
        return [...document.querySelectorAll('.person :is(dt, dd)')]
            .filter(e => e.getBoundingClientRect().right > card.right).map(e => e.textContent); }""")
    assert outside == []
    ctx.close()


def test_the_case_page_shows_the_current_phase_name_whole_in_the_diagram(browser: Browser, base_url: str) -> None:
    page = context(browser, base_url).new_page()
    sign_in(page, "koordinator")
    page.goto(f"/cases/{_a_case(page)}")
    expect(page.locator("svg.diagram .phase-title").nth(1)).to_have_text("Oppfølging og overleveringer")
    page.context.close()
