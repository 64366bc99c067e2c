"""The report's downloads over HTTP, on SQLite and PostgreSQL: the API's and the page's CSV and Excel workbook, with
their media types and file names, bokmål headers by default and English on request, logged as reads, and never a
name or a case reference in them."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from pathway import services
from pathway.store.tables import access_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, signed_in  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NB_SHEETS = ["Om tallene", "Frister per sjekkpunkt", "Saker", "Utfall ved avslutning", "Avviksårsaker",
             "Saker per enhet"]
EN_SHEETS = ["About the figures", "Deadlines per checkpoint", "Cases", "Outcomes at closure", "Deviation reasons",
             "Cases per unit"]


def workbook(body: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(body))


def cells(book: openpyxl.Workbook) -> list[object]:
    return [v for sheet in book for row in sheet.iter_rows(values_only=True) for v in row if v is not None]


def test_the_api_gives_the_report_as_a_workbook_and_a_csv_in_bokmal_or_english(world: World) -> None:
    w = world
    manager = w.auth("leder")
    r = w.client.get(f"{API}/reports/timeliness.xlsx", params={"scope": "all"}, headers=manager)
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    assert r.headers["content-disposition"] == 'attachment; filename="forlop-timeliness.xlsx"'
    book = workbook(r.content)
    assert book.sheetnames == NB_SHEETS
    header = [c.value for c in book["Frister per sjekkpunkt"][1]]
    assert header[:4] == ["Forløp", "Periode", "Perioden er ikke over", "Enhet"] and "Andel innen frist" in header
    rows = list(book["Frister per sjekkpunkt"].iter_rows(min_row=2, values_only=True))
    done = header.index("Gjort i perioden")
    assert rows and all(isinstance(row[done], int) or row[done] in ("<5", "x") for row in rows)
    assert any(isinstance(row[done], int) and row[done] >= 5 for row in rows)  # the demo's figures, as numbers
    assert any(str(row[header.index("Beskrivelse")]).endswith("→ K1 Innledende kartlegging og trusselvurdering")
               for row in rows)  # the interval in words, by the definition

    english = w.client.get(f"{API}/reports/timeliness.xlsx", headers={**manager, "Accept-Language": "en-GB,en"})
    assert workbook(english.content).sheetnames[:5] == EN_SHEETS[:5]  # the manager's own unit: no comparison
    assert [c.value for c in workbook(english.content)["Deadlines per checkpoint"][1]][:2] == ["Pathway", "Period"]

    text = w.client.get(f"{API}/reports/timeliness.csv", params={"scope": "all"}, headers=manager)
    assert text.status_code == 200 and text.headers["content-type"] == "text/csv; charset=utf-8"
    assert text.headers["content-disposition"] == 'attachment; filename="forlop-timeliness.csv"'
    assert text.content.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(text.content.decode("utf-8-sig"))))
    assert table[0][0] == "Tabell" and {row[0] for row in table[1:]} == set(NB_SHEETS)
    english_csv = w.client.get(f"{API}/reports/timeliness.csv", headers={**manager, "Accept-Language": "en"})
    assert english_csv.content.decode("utf-8-sig").startswith("Table,")
    refused = w.lenient.get(f"{API}/reports/timeliness.xlsx", params={"end": "9999-12-31"}, headers=manager)
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"


def test_the_report_page_offers_the_same_downloads_in_the_pages_language(world: World) -> None:
    page = signed_in(TestClient(world.app), "leder")
    query = {"period": "tertial", "scope": "all"}
    xlsx = page.get("/reports/timeliness.xlsx", params=query)
    assert xlsx.status_code == 200 and xlsx.headers["content-type"] == XLSX
    assert xlsx.headers["content-disposition"] == 'attachment; filename="forlop-timeliness.xlsx"'
    assert workbook(xlsx.content).sheetnames == NB_SHEETS
    text = page.get("/reports/timeliness.csv", params=query)
    assert text.status_code == 200 and text.headers["content-type"] == "text/csv; charset=utf-8"
    assert text.content.decode("utf-8-sig").startswith("Tabell,")
    api = world.client.get(f"{API}/reports/timeliness.xlsx", params=query, headers=world.auth("leder"))
    figures = [v for v in cells(workbook(api.content)) if not isinstance(v, str)]
    assert [v for v in cells(workbook(xlsx.content)) if not isinstance(v, str)] == figures  # one read, one report
    assert page.get("/reports/timeliness.xlsx", params={"start": "2026-05-01", "end": "2026-01-01"}).status_code == 422
    assert signed_in(TestClient(world.app), "koordinator").get("/reports/timeliness.xlsx").status_code in (403, 404)


def test_no_download_holds_a_name_or_a_case_reference_and_each_is_logged(world: World) -> None:
    w = world
    references = w.references()
    names = [p.name for p in (services.read_person(uow=w.core.uow(), reference=ref, keys=w.core.keys)
                              for ref in references) if p is not None and p.name]
    assert len(references) >= 30 and names
    with w.core.engine.connect() as conn:
        logged_before = conn.execute(sa.select(sa.func.count()).select_from(access_t).where(
            access_t.c.username == "leder", access_t.c.action.in_(["report.csv", "report.xlsx"]))).scalar_one()
    shown = []
    for scope in ("unit", "all"):
        for period in ("month", "tertial"):
            params = {"scope": scope, "period": period}
            xlsx = w.client.get(f"{API}/reports/timeliness.xlsx", params=params, headers=w.auth("leder"))
            shown.append(" ".join(map(str, cells(workbook(xlsx.content)))))
            shown.append(w.client.get(f"{API}/reports/timeliness.csv", params=params,
                                      headers=w.auth("leder")).content.decode("utf-8-sig"))
    everything = "\n".join(shown)
    assert not [n for n in names if n in everything] and not [r for r in references if r in everything]
    with w.core.engine.connect() as conn:
        logged = conn.execute(sa.select(access_t.c.action).where(
            access_t.c.username == "leder", access_t.c.action.in_(["report.csv", "report.xlsx"]))).scalars().all()
    assert len(logged) - logged_before == 8 and set(logged) == {"report.csv", "report.xlsx"}
