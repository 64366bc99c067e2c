"""The person's copy in a real browser (issue 17): the case's coordinator opens the case, follows "Innsyn (kopi til
personen)" and reads the document in bokmål: the person, the timeline with its correction, who has read the case.
The document passes axe and does not scroll sideways, on a desktop and on a phone. Its top is saved as
docs/screenshots/person-copy.png."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, expect

from tests.e2e.test_web_browser import _overflow, _violations, action, browser, context, open_case, saved, sign_in  # noqa: F401
from tests.e2e.web_support import ROOT, demo_server

SCREENSHOT = ROOT / "docs" / "screenshots" / "person-copy.png"
PERSON = "Tora Oppdiktadottir Innsyn"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_server(tmp_path_factory.mktemp("copy"), cases=0) as url:
        yield url


def test_the_coordinator_opens_the_persons_copy_from_the_case_page(browser: Browser, base_url: str) -> None:  # noqa: F811
    page = context(browser, base_url).new_page()
    sign_in(page, "koordinator")
    reference = open_case(page, PERSON)
    expect(page.get_by_role("link", name="Innsyn (kopi til personen)")).to_have_count(0)  # not theirs yet
    assign = action(page, "Tildel koordinator")
    assert isinstance(assign, Locator)
    assign.get_by_label("Koordinator").select_option("koordinator")
    assign.get_by_role("button", name="Tildel").click()
    saved(page)

    page.get_by_role("link", name="Innsyn (kopi til personen)").click()
    page.wait_for_url(re.compile(rf"/cases/{reference}/copy$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Innsyn: opplysninger registrert om deg")
    expect(page.locator("html")).to_have_attribute("lang", "nb")
    expect(page.get_by_role("heading", name="Personopplysninger")).to_be_visible()
    expect(page.locator("main")).to_contain_text(PERSON)
    expect(page.get_by_role("heading", name="Hvem som har lest eller endret saken").first).to_be_visible()
    expect(page.locator("main")).to_contain_text("Leste en sak")
    expect(page.locator("main")).to_contain_text("Koordinator tildelt")
    assert _violations(page) == [], page.url
    assert _overflow(page) == [], page.url
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))

    phone = context(browser, base_url, viewport={"width": 360, "height": 740}).new_page()
    sign_in(phone, "koordinator")
    phone.goto(f"/cases/{reference}/copy")
    assert _violations(phone) == [], phone.url
    assert _overflow(phone) == [], phone.url
    phone.get_by_role("link", name="Tilbake til saken").click()
    phone.wait_for_url(re.compile(rf"/cases/{reference}$"))
