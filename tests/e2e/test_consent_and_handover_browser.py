"""A handover to the police with the person's consent, in a real browser with JavaScript off: one form, the scope
the police need already ticked, two clicks after opening the case page at its handover section; the page comes back
to that section with the new task listed."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from tests.e2e.test_web_browser import base_url, browser, context, open_case, sign_in  # noqa: F401 (fixtures)


def test_a_handover_to_the_police_with_consent_given_now_in_one_form(browser: Browser, base_url: str) -> None:  # noqa: F811
    page = context(browser, base_url, java_script_enabled=False).new_page()
    sign_in(page, "koordinator")
    reference = open_case(page, "Tora Samtykke Overlevering")
    page.goto(f"/cases/{reference}#handovers")
    handovers = page.locator("section#handovers")

    handovers.locator("summary", has_text="Send overlevering: Politiet (K6)").click()  # 1
    form = handovers.locator("form", has=page.get_by_role("button", name="Send overlevering")).first
    expect(form.get_by_label("Samtykke gitt nå")).to_be_checked()
    for scope in ("Navn", "Trygg kontaktkanal", "Trusselvurdering"):
        expect(form.get_by_label(scope, exact=True)).to_be_checked()
    expect(form.get_by_label("Uten samtykke: Avvergingsplikt (straffeloven § 196)")).to_be_visible()  # the police's legal basis
    expect(form.get_by_label("opplysningsplikt til barnevernet")).to_have_count(0)  # never for the police
    form.get_by_role("button", name="Send overlevering").click()  # 2

    page.wait_for_url(re.compile(rf"/cases/{reference}\?done=handover#handovers$"))
    handovers = page.locator("section#handovers")
    expect(handovers.get_by_role("status")).to_have_text("Lagret.")
    expect(handovers.get_by_role("row", name=re.compile("K6"))).to_contain_text("forespurt")
    consents = page.locator("section#consents")
    expect(consents.get_by_role("row", name=re.compile("Politiet"))).to_contain_text("Trusselvurdering")
    # The step that waited for the consent no longer offers a form, and says why.
    steps = page.locator("section#steps")
    expect(steps.get_by_role("row", name=re.compile("^K6 "))).to_contain_text(
        "K6 utføres ved at etaten fullfører overleveringsoppgaven, ikke for hånd.")
