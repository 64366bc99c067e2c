"""A manager's day with the report, walked in a real browser (Debian's Chromium) with JavaScript off, in bokmål,
against a real server (issue 15's done-when).

The server runs the demo as `make run` does (`forlop demo`, 300 cases: the closed ones over the last year and a month,
so that the year the report opens on has cases in every month) and the scheduler's report job once. The manager `leder` opens /reports with no parameters: a full year by month (12 full months and the
current one, marked as not over yet), the per-checkpoint charts on the last full month, checkpoint names in words
(no "K0→K1" codes, no English), the share within deadline with its three parts and its definition, the percentile
method, deviation reasons, return to the abuser, outcomes at closure and repeat contact, each chart with its table;
with all units, the comparison per unit. The Excel download arrives with its file name. Every view passes axe.
Screenshot for README: docs/screenshots/manager-report.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from api.web.i18n import period_words
from pathway.metrics.periods import default_span, periods_covering
from pathway.scheduler import run_report_snapshots
from tests.e2e.test_pages_in_bokmal import english_on
from tests.e2e.test_partner_day import checked_with_axe, for_readme
from tests.e2e.test_web_browser import browser, context, shot, sign_in  # noqa: F401 (browser: the fixture)
from tests.e2e.web_support import demo_server

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import make_core  # noqa: E402

CODES = re.compile(r"K\d+\s*→\s*K\d+|→K\d+|\b[a-z]+_[a-z_]+\b")  # "K0→K1", "move_out_planned→K10", outcome codes
UNITS = ("Askøy", "Bergen nord", "Bergen sentrum", "Voss")  # by name
ADULT = "Pakkeforløp for personer utsatt for vold i nære relasjoner"  # the pathway's title, over its figures


def _report_job(url: str) -> None:
    """The scheduler's report job, as in production before a manager's first page."""
    core = make_core(url)
    try:
        run_report_snapshots(core)
    finally:
        core.close()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_server(tmp_path_factory.mktemp("managers-day"), cases=300, prepare=_report_job) as url:
        yield url


def _adult(page: Page) -> Locator:
    """The adult pathway's part of the page (each pathway's figures are under its title)."""
    return page.locator("section.pathway-report", has=page.get_by_role("heading", level=2, name=ADULT))


def _section(page: Page, heading: str | re.Pattern[str]) -> Page:
    return _adult(page).locator(  # type: ignore[return-value]
        "section", has=page.get_by_role("heading", level=3, name=heading))


def _has_chart_and_table(page: Page, heading: str | re.Pattern[str]) -> None:
    """The section has its chart (an image with a title) and a data table with at least one row."""
    section = _section(page, heading)
    expect(section.get_by_role("img")).to_have_count(1)
    expect(section.locator("svg title")).not_to_be_empty()
    expect(section.locator("table tbody tr").first).to_be_visible()


def test_a_manager_reads_the_year(browser: Browser, base_url: str) -> None:  # noqa: F811
    page = context(browser, base_url, java_script_enabled=False, accept_downloads=True).new_page()
    sign_in(page, "leder")
    page.goto("/reports")

    # A full year by month: 12 full months and the current one, said in words and marked as not over yet.
    start, end = default_span(datetime.now(timezone.utc))
    months = periods_covering(start, end, "month")
    assert len(months) == 13
    expected = [period_words(p, "nb", partial=p == months[-1]) for p in months]
    options = page.locator("#at option")
    expect(options).to_have_text(expected)
    assert expected[-1].endswith("(så langt)")
    # The per-checkpoint charts open on the last full month, not the one just begun.
    expect(page.locator("#at option[selected]")).to_have_text(expected[-2])
    expect(page.get_by_role("heading", level=2).first).to_have_text(ADULT)  # the adult's pathway first
    expect(_adult(page).get_by_role("heading", name=f"Andel innen frist per sjekkpunkt ({expected[-2]})"))\
        .to_be_visible()
    expect(page.get_by_text(f"{expected[-1]}: perioden er ikke over ennå")).to_be_visible()

    # The share within deadline: its three parts, its definition, and how lead times are summed up.
    expect(page.get_by_text("Andel innen frist: av stegene med frist i perioden, hvor mange som ble gjort innen "
                            "fristen. Steg gjort for sent og steg som fortsatt er åpne etter fristen teller med."))\
        .to_be_visible()
    expect(page.get_by_text("median og 90-persentil, lineær interpolasjon mellom nærmeste rangeringer")).to_be_visible()
    first = _section(page, re.compile("^Andel innen frist per sjekkpunkt"))
    for column in ("Frister i perioden", "Gjort innen fristen", "Gjort for sent", "Åpne etter fristen"):
        expect(first.get_by_role("columnheader", name=column)).to_be_visible()
    k1 = "Første henvendelse registrert → K1 Innledende kartlegging og trusselvurdering"  # names, not "K0→K1"
    expect(first.get_by_role("rowheader", name=k1)).to_be_visible()
    stacked = page.locator("svg[aria-labelledby^='deadlines-checkpoint-krisesenter'] text.chart-label")
    expect(stacked.first).to_have_text(re.compile(r"^K\d+ \w"))

    # The names of the checkpoints and outcomes, in bokmål: no codes, no English, on the page or in its charts.
    main = page.locator("main").inner_text()
    assert not CODES.findall(main), CODES.findall(main)
    assert not english_on(page.content()), english_on(page.content())

    # Deviation reasons, return to the abuser, outcomes at closure and repeat contact: charts with their tables.
    for heading in (f"Oppgitte grunner til avvik ({expected[-2]})",
                    "Tilbake til voldsutøver ved avslutning, per periode", f"Utfall ved avslutning ({expected[-2]})",
                    "Gjentatt kontakt innen 12 måneder, per periode"):
        _has_chart_and_table(page, heading)
    outcomes = _section(page, re.compile("^Utfall ved avslutning"))
    for name in ("Trygg bolig", "Tilbake til voldsutøver", "Avsluttet tidlig", "Alle utfall"):
        expect(outcomes.get_by_role("rowheader", name=name)).to_be_visible()
    returned = _section(page, "Tilbake til voldsutøver ved avslutning, per periode")
    expect(returned.locator("tbody th")).to_have_text(expected)
    repeat = _section(page, "Gjentatt kontakt innen 12 måneder, per periode")
    expect(repeat.locator("tbody th")).to_have_text(expected)
    # The year has figures: some months show how many cases were opened (5 or more), not only hidden counts.
    opened = [c.strip() for c in repeat.locator("tbody td:nth-child(2)").all_inner_texts()]
    assert sum(c.isdigit() and int(c) >= 5 for c in opened) >= 3, opened
    shot(page, "manager-report")
    for_readme("manager-report", "manager-report.png")

    # The Excel download, with the page's query.
    link = page.get_by_role("link", name="Last ned Excel (xlsx)")
    expect(link).to_have_attribute("href", re.compile(
        rf"^/reports/timeliness\.xlsx\?period=month&start={start.isoformat()}&end={end.isoformat()}&scope=unit$"))
    expect(page.get_by_role("link", name="Last ned CSV")).to_have_attribute("href", re.compile(
        r"^/reports/timeliness\.csv\?period=month&"))
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename.endswith(".xlsx"), download.value.suggested_filename
    assert download.value.failure() is None

    # All units: each unit's figures side by side.
    page.get_by_label("Enhet", exact=True).select_option("all")
    page.get_by_role("button", name="Vis").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Alle enheter")
    _has_chart_and_table(page, f"Saker opprettet per enhet ({expected[-2]})")
    per_unit = _section(page, f"Saker opprettet per enhet ({expected[-2]})")
    expect(per_unit.locator("tbody th")).to_have_text(list(UNITS))
    assert not english_on(page.content()), english_on(page.content())
    shot(page, "manager-report-all-units")

    # By tertial: the periods in words too.
    page.get_by_label("Periode", exact=True).select_option("tertial")
    page.get_by_role("button", name="Vis").click()
    expect(page.locator("#at option").first).to_have_text(re.compile(r"^[123]\. tertial \d{4}$"))
    expect(page.locator("#at option").last).to_have_text(re.compile(r"^[123]\. tertial \d{4} \(så langt\)$"))

    checked_with_axe(browser, base_url, "leder", ["/reports", "/reports?scope=all", "/reports?period=tertial"])
