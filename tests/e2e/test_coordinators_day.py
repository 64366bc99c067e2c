"""A coordinator's day, walked in a real browser (Debian's Chromium) with JavaScript off, in bokmål (issue 13).

A phone call: the coordinator opens a case with the person's details (first contact yesterday at 13:00, by phone,
code 7, two children, an interpreter), sees the person and, for a second case of the same person, the repeat-contact
flag; records K1 as done yesterday at 14:00; takes the case; hands over to the police in one form; sees the police's
decline flagged on the list; pauses and resumes the clock; prints the case; subscribes to the deadline feed, which
parses and names nobody. No page says a word of English; the pages pass axe at 100% and 200% zoom and at 360 px.
The list and the case page are saved for README's screenshots.
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import icalendar
from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_pages_in_bokmal import english_on
from tests.e2e.test_web_browser import (  # noqa: F401 (base_url, browser: fixtures)
    SHOTS, _overflow, _violations, base_url, browser, context, saved, shot, sign_in)
from tests.e2e.web_support import ARTIFACTS

OSLO = ZoneInfo("Europe/Oslo")
PERSON = "Synne Oppdiktet Dagsløp"  # synthetic: a name no one has
SAFE_CONTACT = "+47 400 00 017"  # a number in a range no one is given


def in_bokmal(page: Page) -> None:
    assert not english_on(page.content()), (page.url, english_on(page.content()))


def local_input(at: datetime) -> str:
    """A time as a datetime-local input takes it, in Oslo time."""
    return at.astimezone(OSLO).strftime("%Y-%m-%dT%H:%M")


def open_case_at_a_phone_call(page: Page, first_contact: datetime) -> str:
    page.goto("/cases/new")
    in_bokmal(page)
    page.locator("#first_contact_at").fill(local_input(first_contact))
    page.locator("#contact_channel").select_option(label="Telefon")
    page.locator("#reason").fill("ringte i går, registreres i dag")  # an earlier first contact needs a reason
    page.get_by_label("Navn", exact=True).fill(PERSON)
    page.get_by_label("Trygg kontaktkanal").fill(SAFE_CONTACT)
    page.locator("#person_address_protection").select_option(value="code7")
    page.get_by_label("Barn (alder)").fill("4, 9")
    page.get_by_label("Tolk (språk)").fill("somali")
    page.locator("#person_home_municipality").select_option(index=1)
    page.get_by_role("button", name="Opprett sak").click()
    page.wait_for_url(re.compile(r"/cases/[A-Z]+-\d{4}-\d+$"))
    return page.url.rsplit("/", 1)[1]


def test_a_coordinators_day(browser: Browser, base_url: str) -> None:
    now = datetime.now(OSLO)
    yesterday = (now - timedelta(days=1)).date()
    first_contact = datetime(yesterday.year, yesterday.month, yesterday.day, 13, 0, tzinfo=OSLO)
    k1_done = first_contact + timedelta(hours=1)
    ctx = context(browser, base_url, java_script_enabled=False)
    page = ctx.new_page()
    sign_in(page, "koordinator")

    # A phone call: the case, with who it is about.
    reference = open_case_at_a_phone_call(page, first_contact)
    person = page.locator("section#person")
    expect(person.locator(".person-name")).to_have_text(PERSON)
    expect(person).to_contain_text(SAFE_CONTACT)
    expect(person.locator(".protection-code7")).to_contain_text("Kode 7")
    expect(person).to_contain_text("4, 9")
    expect(person).to_contain_text("somali")
    expect(person).to_contain_text("Telefon")
    in_bokmal(page)

    # She calls again: a second case of the same person is flagged as a repeat contact.
    again = open_case_at_a_phone_call(page, first_contact + timedelta(minutes=30))
    expect(page.locator("section#person .repeat-contact")).to_contain_text("Gjentatt kontakt")
    page.goto(f"/cases/{reference}")

    # K1, the conversation held yesterday at 14:00, recorded now as done then.
    steps = page.locator("section#steps")
    steps.locator("summary", has_text=re.compile("^Fullfør K1$")).click()
    form = steps.locator("form", has=page.get_by_role("button", name="Fullfør K1", exact=True))
    form.get_by_label(re.compile("^Merknad")).fill("samtale gjennomført med tolk")
    form.get_by_label(re.compile("^Utført")).fill(local_input(k1_done))
    form.get_by_role("button", name="Fullfør K1", exact=True).click()
    page.wait_for_url(re.compile(rf"/cases/{reference}\?done=complete#steps$"))
    timeline = page.locator("section#timeline")
    expect(timeline).to_contain_text(f"utført {k1_done:%d.%m.%Y} 14:00")
    in_bokmal(page)

    # The coordinator takes the case (so its deadlines are in her calendar).
    actions = page.locator("section#actions")
    actions.locator("summary", has_text="Tildel koordinator").click()
    form = actions.locator("form[action$='/do/coordinator']")
    form.get_by_label(re.compile("^Koordinator")).select_option("koordinator")
    form.get_by_role("button", name="Tildel").click()
    saved(page)

    # The police: the handover and the consent in one form, the scope the police need already ticked.
    handovers = page.locator("section#handovers")
    handovers.locator("summary", has_text="Send overlevering: Politiet (K6)").click()
    handovers.locator("form", has=page.get_by_role("button", name="Send overlevering")).first.get_by_role(
        "button", name="Send overlevering").click()
    page.wait_for_url(re.compile(rf"/cases/{reference}\?done=handover#handovers$"))
    expect(page.locator("section#handovers").get_by_role("row", name=re.compile("K6"))).to_contain_text("forespurt")
    in_bokmal(page)

    # The police decline; the coordinator's list says so on the case's row.
    police = context(browser, base_url, java_script_enabled=False).new_page()
    sign_in(police, "politi")
    police.goto("/tasks")
    task = police.locator("article.task", has_text=reference)
    task.locator("summary", has_text="Avslå").click()
    task.get_by_label("Begrunnelse for å avslå").fill("saken hører til et annet distrikt")
    task.get_by_role("button", name="Avslå").click()
    expect(police.get_by_role("status").filter(has_text="Lagret.")).to_be_visible()
    in_bokmal(police)
    police.context.close()
    page.goto("/cases?sort=reference&order=desc")
    row = page.locator("table.cases tbody tr", has=page.locator(f"a:text-is('{reference}')"))
    expect(row.locator(".handover-alert")).to_contain_text("K6 · Politiet: avslått")
    expect(row).to_contain_text(PERSON)
    in_bokmal(page)
    shot(page, "day-list")

    # The person is in hospital: the clock pauses, and runs again.
    page.goto(f"/cases/{reference}")
    actions = page.locator("section#actions")
    actions.locator("summary", has_text="Sett klokken på pause").click()
    actions.locator("#pause-reason").fill("personen er innlagt på sykehus")
    actions.get_by_role("button", name="Pause").click()
    saved(page)
    expect(page.locator(".case-meta")).to_contain_text("Klokken står på pause siden")
    actions = page.locator("section#actions")
    actions.locator("summary", has_text="Start klokken igjen").click()
    actions.get_by_role("button", name="Fortsett").click()
    saved(page)
    expect(page.locator(".case-meta")).not_to_contain_text("Klokken står på pause siden")
    for said in ("Satt på pause", "Gjenopptatt", "Overlevering oppdatert: avslått"):
        expect(page.locator("section#timeline")).to_contain_text(said)
    in_bokmal(page)
    shot(page, "day-case")

    # The cooperation meeting: the case printed, without where she can be reached.
    page.emulate_media(media="print")
    expect(page.locator(".person-name")).to_be_visible()
    expect(page.get_by_text(SAFE_CONTACT)).not_to_be_visible()
    for element in page.locator("form").all():
        expect(element).not_to_be_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.pdf(path=str(ARTIFACTS / "day-case.pdf"), format="A4")
    page.emulate_media(media="screen")

    # The deadline feed for her desk calendar: it parses, holds the case and names nobody.
    page.goto("/calendar")
    page.get_by_role("button", name="Lag en adresse").click()
    address = page.locator("#feed-address").input_value()
    in_bokmal(page)
    feed = httpx.get(base_url + urlsplit(address).path, timeout=10)  # the server's own address, whatever its URL
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(feed.content)
    events = [e for e in calendar.walk("VEVENT") if reference in str(e.get("summary"))]
    assert events, "the new case's open steps are in the feed"
    for name_part in PERSON.split() + [SAFE_CONTACT]:
        assert name_part not in feed.text
    ctx.close()

    # The pages she used pass axe at 100% and 200% zoom and at 360 px (axe needs script: a context with it).
    for viewport, scale in (({"width": 1280, "height": 900}, 1), ({"width": 640, "height": 450}, 2),
                            ({"width": 360, "height": 800}, 1)):
        checked = context(browser, base_url, viewport=viewport, device_scale_factor=scale).new_page()
        sign_in(checked, "koordinator")
        for path in (f"/cases/{reference}", f"/cases/{again}", "/cases", "/cases/new", "/calendar"):
            checked.goto(path)
            assert _violations(checked) == [], (viewport, path)
            assert _overflow(checked) == [], (viewport, path)
        checked.context.close()

    # README's screenshots (docs/screenshots, copied from the artifacts by hand): the list and the case page.
    for name, target in (("day-list", "dashboard"), ("day-case", "case")):
        shutil.copyfile(SHOTS / f"{name}.png", ARTIFACTS / f"readme-{target}.png")
