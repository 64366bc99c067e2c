"""The children's pathways in a real browser (issue 16, measure 11): a coordinator opens a case, adds two children on
its page (one whose other parent shares parental responsibility, with a named child coordinator), sees both
children's pathways on the case page, opens one child's page (part of the case, the child's own steps), is warned on
the school handover form, and pauses the adult's clock without the children's. Every page passes axe, in bokmål and
in English. The children's section is saved as docs/screenshots/children-pathways.png."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from pathway import services
from tests.e2e.test_web_browser import _overflow, _violations, action, browser, context, open_case, saved, sign_in  # noqa: F401
from tests.e2e.web_support import ROOT, demo_server

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import make_core  # noqa: E402

CHILD_COORDINATOR = "barnekoordinator"
SCREENSHOT = ROOT / "docs" / "screenshots" / "children-pathways.png"
WARNING = "Den andre forelderen har del i foreldreansvaret og kan få opplysninger fra skolen eller barnehagen."


def _child_coordinator(url: str) -> None:
    """A second coordinator in the first demo unit (the demo's koordinator's), to be a child's own coordinator."""
    core = make_core(url)
    try:
        services.add_user(engine=core.engine, username=CHILD_COORDINATOR, role="coordinator",
                          unit=core.settings.units[0])
    finally:
        core.close()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_server(tmp_path_factory.mktemp("children"), cases=0, prepare=_child_coordinator) as url:
        yield url


def accessible(page: Page) -> None:
    assert _violations(page) == [], page.url
    assert _overflow(page) == [], page.url


def add_child(page: Page, first_name: str, birth_year: str, *, school: str = "", shared: bool = False,
              coordinator: str | None = None) -> None:
    form = action(page, "Legg til barn")
    assert isinstance(form, Locator)
    form.get_by_label("Fornavn").fill(first_name)
    form.get_by_label("Fødselsår").fill(birth_year)
    if school:
        form.get_by_label("Skole eller barnehage").fill(school)
    if shared:
        form.get_by_label("Den andre forelderen har del i foreldreansvaret").check()
    if coordinator is not None:
        form.get_by_label("Barnets koordinator").select_option(coordinator)
    form.get_by_role("button", name="Legg til barnet").click()
    page.wait_for_url(re.compile(r"\?done=children#children$"))
    saved(page)


def test_a_coordinator_sees_the_childrens_pathways_on_the_case_page(browser: Browser, base_url: str) -> None:  # noqa: F811
    page = context(browser, base_url).new_page()
    sign_in(page, "koordinator")
    reference = open_case(page, "Tora Oppdiktadottir Barneforløp")
    assign = action(page, "Tildel koordinator")
    assert isinstance(assign, Locator)
    assign.get_by_label("Koordinator").select_option("koordinator")
    assign.get_by_role("button", name="Tildel").click()
    saved(page)

    children = page.locator("section#children")
    expect(children).to_contain_text("Ingen barn har eget forløp i denne saken.")
    add_child(page, "Testbarn Ås", "2016", school="Påfunnet skole", shared=True, coordinator=CHILD_COORDINATOR)
    add_child(page, "Testbarn Øy", "2021")

    # Both children's pathways, together on the adult's case page, each with its own coordinator and deadline.
    rows = children.locator("tbody tr")
    expect(rows).to_have_count(2)
    first, second = rows.nth(0), rows.nth(1)
    first_ref, second_ref = first.get_attribute("data-reference"), second.get_attribute("data-reference")
    assert first_ref and second_ref and len({reference, first_ref, second_ref}) == 3
    assert not first_ref.startswith(reference), "a reference of its own, never the adult's with a suffix"
    for shown in ("Testbarn Ås", first_ref, "2016", "Påfunnet skole", "Barnets forløp på krisesenteret",
                  "Mottak", CHILD_COORDINATOR):
        expect(first).to_contain_text(shown)
    for shown in ("Testbarn Øy", second_ref, "2021", "Ikke registrert", "koordinator"):
        expect(second).to_contain_text(shown)
    expect(second).not_to_contain_text(CHILD_COORDINATOR)
    expect(first.locator(".how-late")).to_contain_text("frist")
    accessible(page)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    children.screenshot(path=str(SCREENSHOT))

    # One child's own page: part of the case, the child instead of the person, the child's own steps.
    first.get_by_role("link", name="Testbarn Ås").click()
    page.wait_for_url(re.compile(rf"/cases/{re.escape(first_ref)}$"))
    expect(page.locator("p.part-of")).to_contain_text(f"Del av sak {reference}")
    expect(page.locator("section#child")).to_contain_text("Testbarn Ås")
    expect(page.locator("section#person")).to_have_count(0)
    expect(page.locator("section#steps").get_by_role("row", name=re.compile("^B1 "))).to_be_visible()
    expect(page.locator("section#timeline")).to_be_visible()
    # The school handover warns before anything is sent: the definition's words for this case's condition.
    handovers = page.locator("section#handovers")
    school = handovers.locator("details", has=page.locator(
        "summary", has_text="Send overlevering: Skole eller barnehage (B3)"))
    expect(school.locator(".handover-warning")).to_be_hidden()
    school.locator("summary").click()
    expect(school.locator(".handover-warning")).to_be_visible()
    expect(school.locator(".handover-warning")).to_contain_text(WARNING)
    accessible(page)

    # Back to the family: pausing the adult's clock, the children's box left unticked.
    page.get_by_role("link", name=reference, exact=True).first.click()
    page.wait_for_url(re.compile(rf"/cases/{reference}$"))
    pause = action(page, "Sett klokken på pause")
    assert isinstance(pause, Locator)
    expect(pause.get_by_label("Sett også barnas forløp på pause")).not_to_be_checked()
    pause.get_by_label("Begrunnelse (påkrevd)").fill("personen er på sykehus")
    pause.get_by_role("button", name="Pause").click()
    page.wait_for_url(re.compile(rf"/cases/{reference}\?done=pause"))
    saved(page)
    expect(page.locator("p.case-meta .badge-paused")).to_be_visible()
    rows = page.locator("section#children tbody tr")
    expect(rows).to_have_count(2)
    for n in range(2):  # each child's clock still runs
        expect(rows.nth(n).locator(".badge-paused")).to_have_count(0)
        expect(rows.nth(n).locator(".how-late")).to_contain_text("frist")
    accessible(page)

    # The same page in English.
    page.get_by_role("link", name="English").click()
    children = page.locator("section#children")
    expect(children.get_by_role("heading", level=2)).to_have_text("Children's pathways")
    expect(children.locator("tbody tr").first).to_contain_text("The child's pathway at the crisis centre")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    accessible(page)
    page.context.close()

    # On a phone (360 px), the family's pages hold together too.
    phone = context(browser, base_url, viewport={"width": 360, "height": 800}).new_page()
    sign_in(phone, "koordinator")
    for path in (f"/cases/{reference}", f"/cases/{first_ref}"):
        phone.goto(path)
        accessible(phone)
    phone.context.close()
