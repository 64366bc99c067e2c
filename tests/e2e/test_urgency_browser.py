"""What is most urgent, in a real browser (Debian's Chromium, headless): the case list filtered, sorted and paged by
plain links, and an inbox with notifications grouped per case, each passing axe-core without serious or critical
violations and holding together at 200% zoom; "Merk alle som lest" empties the inbox. (The demo server of the other
browser tests runs no scan, so its inbox is empty: this one runs one first.)"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.test_web_browser import _overflow, _violations, browser, context, shot, sign_in  # noqa: F401 (browser: the fixture)
from tests.e2e.web_support import FORLOP, demo_server

pytestmark = pytest.mark.any_date  # layout and accessibility


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("urgency")
    with demo_server(workdir, cases=40) as url:
        env = {**os.environ, "FORLOP_ENV": "demo", "FORLOP_DATABASE_URL": f"sqlite:///{workdir / 'web.db'}"}
        subprocess.run([str(FORLOP), "scan", "--no-dispatch"], env=env, check=True, capture_output=True, timeout=300)
        yield url


PAGES = ["/cases?who=mine&deadline=week&sort=phase&order=desc", "/cases?sort=reference", "/inbox",
         "/inbox?view=list", "/inbox?unread=true"]


@pytest.mark.parametrize("zoom", [1, 2], ids=["100%", "200%"])
def test_the_list_and_the_grouped_inbox_pass_axe_and_hold_together_at_200_percent(browser: Browser, base_url: str,
                                                                                  zoom: int) -> None:
    ctx = context(browser, base_url, viewport={"width": 1280 // zoom, "height": 900 // zoom},
                  device_scale_factor=zoom)
    page = ctx.new_page()
    sign_in(page, "koordinator")
    page.goto("/inbox")
    assert page.locator("table.inbox-groups tbody tr").count() > 0, "the scan should have left notifications"
    found = []
    for path in PAGES:
        page.goto(path)
        found += [f"{path}: {v}" for v in _violations(page) + _overflow(page)]
        if zoom == 1:
            shot(page, f"urgency-{path.strip('/').replace('/', '-').replace('?', '-').replace('&', '-')}")
    assert not found, "\n".join(found)
    ctx.close()


def test_sorting_is_a_link_and_mark_all_read_empties_the_inbox(browser: Browser, base_url: str) -> None:
    page = context(browser, base_url, java_script_enabled=False).new_page()
    sign_in(page, "koordinator")
    page.goto("/cases")
    page.get_by_role("link", name="Sak (sorter)").click()
    expect(page.locator("th[aria-sort='ascending']")).to_contain_text("Sak")
    references = page.locator("table.cases tbody th a").all_inner_texts()
    assert references == sorted(references)
    page.goto("/inbox")
    page.get_by_role("button", name="Merk alle som lest").click()
    expect(page.locator("h1")).to_contain_text("(0 uleste)")
    page.goto("/inbox?unread=true")
    expect(page.get_by_text("Alle varsler er lest.")).to_be_visible()
