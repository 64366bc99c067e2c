"""Erasure and legal holds in a real browser (issue 17): the administrator finds "Sletting og rettslig pålegg" in the
menu, sees when each closed case will be erased and the erasure log, puts a case on legal hold with a reason, sees it
held, and lifts the hold again; a hold without a case that exists is refused on the page. The page passes axe."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import Browser, Page, expect

from pathway import services
from pathway.case import commands as do
from pathway.services import retention
from tests.e2e.test_web_browser import _overflow, _violations, browser, context, sign_in  # noqa: F401
from tests.e2e.web_support import demo_server

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import make_core  # noqa: E402

CLOSED = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)  # a fixed closure: its erase-from day is known
REFERENCES: dict[str, str] = {}


def _closed_cases(url: str) -> None:
    """Two closed cases: one kept (to hold), one erased already (for the log)."""
    core = make_core(url)
    try:
        for name in ("kept", "erased"):
            reference = services.open_case(
                uow=core.uow(), pathway_id="krisesenter", unit=core.settings.units[0], first_contact_at=CLOSED,
                actor="koordinator", keys=core.keys, index_key=core.settings.index_key, reference_prefix="TST",
                at=CLOSED).reference
            services.execute(uow=core.uow(), reference=reference, expected_version=None, actor="koordinator",
                             command=do.Close("declined", reason="takket nei"), at=CLOSED + timedelta(hours=1))
            REFERENCES[name] = reference
        with core.engine.begin() as conn:
            retention.erase_case(conn, case_id=retention.case_id_of(conn, REFERENCES["erased"]),
                                 rule="retention: 1826 days after closure (FORLOP_RETENTION_DAYS)",
                                 at=CLOSED + timedelta(days=1826), by="scheduler")
    finally:
        core.close()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_server(tmp_path_factory.mktemp("retention"), cases=0, prepare=_closed_cases) as url:
        yield url


def accessible(page: Page) -> None:
    assert _violations(page) == [], page.url
    assert _overflow(page) == [], page.url


def test_an_administrator_holds_a_case_and_lifts_the_hold(browser: Browser, base_url: str) -> None:
    kept, erased = REFERENCES["kept"], REFERENCES["erased"]
    page = context(browser, base_url).new_page()
    sign_in(page, "admin")
    page.get_by_role("link", name="Sletting og rettslig pålegg").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sletting og rettslig pålegg")
    due = page.get_by_role("region", name="Hva som slettes når")
    expect(due.get_by_role("row", name=kept)).to_contain_text("23.11.2031")  # five years (1826 days) after closure
    log = page.get_by_role("region", name="Slettelogg")
    expect(log.get_by_role("row", name=erased)).to_contain_text("1826 dager etter avslutning (FORLOP_RETENTION_DAYS)")
    expect(log.get_by_role("row", name=erased)).to_contain_text("automatisk, om natten")
    expect(page.get_by_text("Ingen sak er underlagt rettslig pålegg.")).to_be_visible()
    accessible(page)

    form = page.locator("form[action='/admin/retention/hold']")
    form.get_by_label("Saksnummer").fill("TST-1999-9999")
    form.get_by_label("Begrunnelse").fill("klage til Statsforvalteren")
    form.get_by_role("button", name="Sett pålegget").click()
    expect(page.get_by_role("alert")).to_contain_text("Det finnes ingen sak med denne referansen.")

    form.get_by_label("Saksnummer").fill(kept)
    form.get_by_label("Begrunnelse").fill("klage til Statsforvalteren")
    form.get_by_role("button", name="Sett pålegget").click()
    expect(page.get_by_role("status")).to_contain_text("Saken er underlagt rettslig pålegg")
    holds = page.get_by_role("region", name="Rettslige pålegg som gjelder")
    expect(holds.get_by_role("row", name=kept)).to_contain_text("klage til Statsforvalteren")
    expect(due.get_by_role("row", name=kept)).to_contain_text("Rettslig pålegg")
    accessible(page)

    row = holds.get_by_role("row", name=kept)
    row.get_by_label("Hvorfor pålegget oppheves").fill("saken er avgjort")
    row.get_by_role("button", name="Opphev pålegget").click()
    expect(page.get_by_role("status")).to_contain_text("Det rettslige pålegget er opphevet")
    expect(page.get_by_text("Ingen sak er underlagt rettslig pålegg.")).to_be_visible()
