"""A police referral in a real browser (issue 16's done-when): the police contact sends one from "Henvisninger", the
unit's coordinator accepts it from the intake queue and lands on the new case, whose first contact says the police
referred it; the police then see "Godtatt" and nothing of the case. axe passes on both pages; the texts are bokmål,
and the police's page reads in English one click away."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_web_browser import _violations, base_url, browser, context, sign_in  # noqa: F401 (fixtures)

PERSON = "Testperson Henvist Nettleser"  # synthetic
PHONE = "+47 400 00 000"


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Logg ut").click()
    expect(page.get_by_role("status")).to_contain_text("Du er logget ut.")


def test_the_police_send_a_referral_and_the_coordinator_accepts_it_into_a_case(browser: Browser,  # noqa: F811
                                                                               base_url: str) -> None:  # noqa: F811
    page = context(browser, base_url).new_page()
    sign_in(page, "politi")
    page.get_by_role("navigation", name="Hovedmeny").get_by_role("link", name="Henvisninger").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Henvisninger")
    assert not _violations(page)
    page.get_by_label("Enhet").select_option("bergen-sentrum")
    page.get_by_label("Personens navn").fill(PERSON)
    page.get_by_label("Telefon for kontakt").fill(PHONE)
    page.get_by_label("Hva som skjedde, med få ord").fill("Slått av partner i natt")
    page.get_by_label("Trusselnivå").select_option("high")
    page.get_by_label("Personen har sagt ja til å bli kontaktet").check()
    page.get_by_role("button", name="Send henvisningen").click()
    page.wait_for_url(re.compile(r"/referrals\?done=sent$"))
    expect(page.get_by_role("status")).to_have_text("Henvisningen er sendt.")
    mine = page.locator("tr.referral").first
    expect(mine).to_contain_text("Mottatt")
    expect(page.locator("main")).not_to_contain_text(PERSON)  # the list says the status, not the person
    assert not _violations(page)
    sign_out(page)

    sign_in(page, "koordinator")
    page.get_by_role("navigation", name="Hovedmeny").get_by_role("link", name="Henvisninger fra politiet").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Henvisninger fra politiet")
    referral = page.locator("article.referral", has=page.get_by_role("heading", name=PERSON))
    expect(referral).to_contain_text(PHONE)
    expect(referral).to_contain_text("Høy")
    assert not _violations(page)
    referral.get_by_role("button", name="Ta imot og åpne sak").click()
    page.wait_for_url(re.compile(r"/cases/[A-Z]+-\d{4}-\d+$"))
    reference = page.url.rsplit("/", 1)[1]
    expect(page.locator("main")).to_contain_text("Henvist fra politiet")  # the first contact's channel
    expect(page.locator("main")).to_contain_text("K15")  # first contact after a police referral
    sign_out(page)

    sign_in(page, "politi")
    page.goto("/referrals")
    expect(page.locator("tr.referral").first).to_contain_text("Godtatt")
    expect(page.locator("main")).not_to_contain_text(reference)


def test_a_declined_referral_shows_its_reason_and_the_page_reads_in_english(browser: Browser,  # noqa: F811
                                                                            base_url: str) -> None:  # noqa: F811
    page = context(browser, base_url).new_page()
    sign_in(page, "politi")
    page.goto("/referrals")
    page.get_by_label("Enhet").select_option("bergen-sentrum")
    page.get_by_label("Personens navn").fill(PERSON + " To")
    page.get_by_label("Telefon for kontakt").fill(PHONE)
    page.get_by_label("Hva som skjedde, med få ord").fill("Trusler på telefon")
    page.get_by_role("button", name="Send henvisningen").click()
    page.wait_for_url(re.compile(r"/referrals\?done=sent$"))
    sign_out(page)

    sign_in(page, "koordinator")
    page.goto("/referrals/queue")
    referral = page.locator("article.referral", has=page.get_by_role("heading", name=PERSON + " To"))
    referral.locator("summary", has_text="Avslå").click()
    referral.get_by_label("Begrunnelse for avslag (politiet leser den)").fill("Bor i Voss; henvis dit")
    referral.get_by_role("button", name="Avslå").click()
    page.wait_for_url(re.compile(r"/referrals/queue\?done=declined$"))
    expect(page.get_by_role("status")).to_contain_text("politiet ser begrunnelsen")
    sign_out(page)

    sign_in(page, "politi")
    page.goto("/referrals")
    row = page.locator("tr.referral").first
    expect(row).to_contain_text("Avslått")
    expect(row).to_contain_text("Bor i Voss; henvis dit")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Referrals")
    expect(page.get_by_role("heading", name="Send a referral")).to_be_visible()
    expect(page.locator("tr.referral").first).to_contain_text("Declined")
    assert not _violations(page)
