"""Signing in through an identity provider in a real browser (issue 18): Chromium, a Forløp server and two real
OpenID Connect providers (Node.js ``oidc-provider``), each a process of its own on 127.0.0.1. A coordinator presses
"Logg inn med Bergen kommune", signs in at the provider and lands on their unit's cases; a police contact lands on
their tasks; someone without a mapped group reads why they are refused; a spoiled ID token and a replayed state sign
no one in; a group changed at the provider changes the role at the next sign-in; signing out goes through the
provider and back. Screenshots of each page, and axe on Forløp's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.oidc_support import MANAGERS, two_providers
from tests.e2e.test_web_browser import _overflow, _violations, browser, context, shot  # noqa: F401
from tests.e2e.web_support import demo_server
from tests.suite.oidc import Provider

Site = tuple[str, Provider, Provider]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("oidc-web")
    with two_providers(work) as (municipality, police, config):
        (work / "server").mkdir()
        env = {"FORLOP_OIDC_CONFIG": str(config), "FORLOP_TEST_POLICE_SECRET": "forlop-secret"}
        with demo_server(work / "server", cases=12, env=env) as url:
            yield url, municipality, police


def at_provider(page: Page, button: str, login: str) -> None:
    """Press a provider's button on Forløp's sign-in page and sign in at the provider's own page."""
    page.goto("/login")
    page.get_by_role("link", name=button).click()
    page.get_by_label("Login").fill(login)
    page.get_by_role("button", name="Sign in").click()


def accessible(page: Page) -> None:
    assert _violations(page) == [], page.url
    assert _overflow(page) == [], page.url


def test_a_coordinator_signs_in_through_the_municipality_works_and_signs_out(browser: Browser, site: Site) -> None:
    url, _, _ = site
    page = context(browser, url).new_page()
    page.goto("/login")
    expect(page.get_by_role("link", name="Logg inn med Bergen kommune")).to_be_visible()
    expect(page.get_by_role("link", name="Logg inn med politiet")).to_be_visible()
    accessible(page)
    shot(page, "oidc-sign-in-page")
    at_provider(page, "Logg inn med Bergen kommune", "kari")
    expect(page).to_have_url(f"{url}/cases")
    expect(page.get_by_text("Logget inn som kari")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    rows = page.locator("table tbody tr")
    expect(rows.first).to_be_visible()
    assert "Bergen sentrum" in page.content()
    accessible(page)
    shot(page, "oidc-coordinator-cases")
    page.get_by_role("button", name="Logg ut").click()
    expect(page).to_have_url(f"{url}/login?note=signed_out")  # through the provider's end-session and back
    expect(page.get_by_role("status").filter(has_text="Du er logget ut.")).to_be_visible()
    page.goto("/cases")
    expect(page).to_have_url(f"{url}/login?next=/cases")
    page.get_by_role("link", name="Logg inn med Bergen kommune").click()
    expect(page.get_by_label("Login")).to_be_visible()  # signed out at the provider too: it asks again


def test_a_police_contact_signs_in_through_the_police_and_lands_on_their_tasks(browser: Browser, site: Site) -> None:
    url, _, _ = site
    page = context(browser, url).new_page()
    at_provider(page, "Logg inn med politiet", "per")
    expect(page).to_have_url(f"{url}/tasks")
    expect(page.get_by_text("Logget inn som per.politi")).to_be_visible()
    accessible(page)
    shot(page, "oidc-police-tasks")


def test_someone_without_a_mapped_group_reads_why_they_are_refused(browser: Browser, site: Site) -> None:
    url, _, _ = site
    page = context(browser, url).new_page()
    at_provider(page, "Logg inn med Bergen kommune", "ola")
    expect(page.get_by_role("heading", level=1)).to_have_text("Du har ikke tilgang til Forløp")
    expect(page.get_by_role("alert")).to_contain_text(
        "Kontoen din hos Bergen kommune er ikke med i noen gruppe som gir tilgang til Forløp")
    accessible(page)
    shot(page, "oidc-refused-no-group")
    page.get_by_role("link", name="Tilbake til innloggingssiden").click()
    expect(page).to_have_url(f"{url}/login")


def test_a_spoiled_id_token_and_a_replayed_state_sign_no_one_in(browser: Browser, site: Site) -> None:
    url, municipality, _ = site
    page = context(browser, url).new_page()
    municipality.mischief("tamper")
    at_provider(page, "Logg inn med Bergen kommune", "mona")
    expect(page.get_by_role("heading", level=1)).to_have_text("Innloggingen kunne ikke bekreftes")
    shot(page, "oidc-refused-token")
    page.goto("/cases")
    expect(page).to_have_url(f"{url}/login?next=/cases")

    fresh = context(browser, url).new_page()
    callbacks: list[str] = []
    fresh.on("request", lambda r: callbacks.append(r.url) if "/callback?" in r.url else None)
    at_provider(fresh, "Logg inn med Bergen kommune", "mona")
    expect(fresh).to_have_url(f"{url}/cases")
    fresh.goto(callbacks[0])  # the same answer from the provider, a second time
    expect(fresh.get_by_role("heading", level=1)).to_have_text("Innloggingen kunne ikke bekreftes")


def test_a_group_changed_at_the_provider_changes_the_role_at_the_next_sign_in(browser: Browser, site: Site) -> None:
    url, municipality, _ = site
    page = context(browser, url).new_page()
    at_provider(page, "Logg inn med Bergen kommune", "rolf")
    expect(page).to_have_url(f"{url}/cases")
    page.get_by_role("button", name="Logg ut").click()
    expect(page).to_have_url(f"{url}/login?note=signed_out")
    municipality.set_claims("rolf", {"preferred_username": "rolf@bergen.kommune.test", "groups": [MANAGERS]})
    at_provider(page, "Logg inn med Bergen kommune", "rolf")
    expect(page).to_have_url(f"{url}/reports")  # a manager now: the report, not the cases
    page.goto("/cases")
    expect(page.get_by_role("heading", level=1)).to_have_text("Fant ikke siden")
