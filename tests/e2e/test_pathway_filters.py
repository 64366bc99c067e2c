"""The case list and the managers' report by pathway, over HTTP on SQLite and PostgreSQL: each listed case names its
pathway, the API and the pages keep one pathway when asked (an unknown one is a 422 naming the field), and the report
page shows each pathway's intervals under its title, the child pathway's like the adult's."""

from __future__ import annotations

import csv
import io
import re

import pytest

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, signed_in  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

ADULT_NB, CHILD_NB = "Pakkeforløp for personer utsatt for vold i nære relasjoner", "Barnets forløp på krisesenteret"


@pytest.fixture(scope="module")
def child(world: World) -> str:
    """A case on the child pathway in koordinator's unit, opened through the API."""
    r = world.client.post(f"{API}/cases", json={"pathway": "barn"}, headers=world.auth("koordinator"))
    assert r.status_code == 201, r.text
    assert r.json()["pathway"] == "barn"
    return str(r.json()["reference"])


def test_the_api_lists_each_cases_pathway_and_keeps_one_when_asked(world: World, child: str) -> None:
    w = world
    every = w.client.get(f"{API}/cases", params={"limit": 200, "status": "all"}, headers=w.auth("koordinator")).json()
    assert every["total"] <= 200  # one page: the whole unit
    pathways = {c["reference"]: (c["pathway"], c["pathway_title"]) for c in every["items"]}
    assert pathways[child] == ("barn", CHILD_NB)
    assert {p for p, _ in pathways.values()} == {"barn", "krisesenter"}
    assert {t for p, t in pathways.values() if p == "krisesenter"} == {ADULT_NB}
    children = {r for r, (p, _) in pathways.items() if p == "barn"}
    only = w.client.get(f"{API}/cases", params={"pathway": "barn", "status": "all", "limit": 200},
                        headers=w.auth("koordinator")).json()
    assert {c["reference"] for c in only["items"]} == children and only["total"] == len(children)
    assert {c["pathway_title"] for c in only["items"]} == {CHILD_NB}  # in the user's language
    adults = w.client.get(f"{API}/cases", params={"pathway": "krisesenter", "status": "all", "limit": 200},
                          headers=w.auth("koordinator")).json()
    assert {c["reference"] for c in adults["items"]} == set(pathways) - children
    assert adults["total"] == every["total"] - len(children)


def test_an_unknown_pathway_is_a_problem_naming_the_field(world: World) -> None:
    w = world
    for url, user in ((f"{API}/cases", "koordinator"), (f"{API}/reports/timeliness", "leder"),
                      (f"{API}/reports/timeliness.csv", "leder")):
        r = w.client.get(url, params={"pathway": "ukjent"}, headers=w.auth(user))
        assert r.status_code == 422, (url, r.text)
        problem = r.json()
        assert r.headers["content-type"].startswith("application/problem+json")
        assert problem["errors"][0]["loc"][-1] == "pathway"
        assert "barn" in problem["detail"] and "krisesenter" in problem["detail"] and "ukjent" not in problem["detail"]


def test_the_cases_page_shows_each_rows_pathway_and_filters_by_it(world: World, child: str) -> None:
    page = signed_in(world.client, "koordinator")
    every = page.get("/cases", params={"status": "all"})
    assert every.status_code == 200
    assert f'<option value="barn">{CHILD_NB}</option>' in every.text
    only = page.get("/cases", params={"pathway": "barn", "status": "all", "q": child})
    rows = re.findall(r'<th scope="row"><a href="/cases/([^"]+)">', only.text)
    assert rows == [child]
    adults = page.get("/cases", params={"pathway": "krisesenter", "status": "all", "q": child})
    assert re.findall(r'<th scope="row"><a href="/cases/([^"]+)">', adults.text) == []
    assert f'<td data-label="Forløp" class="pathway">{CHILD_NB}</td>' in only.text
    assert '<option value="barn" selected>' in only.text
    assert ">Opphold og støtte<" in only.text  # the phase filter offers the child pathway's phases
    assert page.get("/cases", params={"pathway": "ukjent"}).status_code == 422


def test_the_report_shows_each_pathways_intervals_under_its_title_and_keeps_one_when_asked(
        world: World, child: str) -> None:
    w = world
    manager = w.auth("leder")
    report = w.client.get(f"{API}/reports/timeliness", headers=manager).json()
    assert {"barn", "krisesenter"} <= {r["pathway"] for r in report["intervals"]}
    assert report["pathway"] is None
    barn = w.client.get(f"{API}/reports/timeliness", params={"pathway": "barn"}, headers=manager).json()
    assert barn["pathway"] == "barn"
    assert {r["pathway"] for r in barn["intervals"]} == {"barn"} and {c["pathway"] for c in barn["cases"]} == {"barn"}
    assert {r["interval"] for r in barn["intervals"]} >= {"B0→B1", "B0→B2", "B0→B3", "B0→B4"}

    page = signed_in(w.client, "leder")
    both = page.get("/reports")
    assert both.status_code == 200
    titles = re.findall(r'<h2 id="pathway-([a-z_]+)-h">([^<]+)</h2>', both.text)
    assert ("barn", CHILD_NB) in titles and ("krisesenter", ADULT_NB) in titles
    child_section = both.text.split('<h2 id="pathway-barn-h">')[1].split('<section class="pathway-report"')[0]
    assert "→ B1 Barnesamtale og kartlegging" in child_section and "K1 " not in child_section
    one = page.get("/reports", params={"pathway": "barn"})
    assert re.findall(r'<h2 id="pathway-([a-z_]+)-h">', one.text) == ["barn"]
    assert "pathway=barn" in one.text  # the downloads keep the filter
    assert page.get("/reports", params={"pathway": "ukjent"}).status_code == 422
    assert page.get("/reports/timeliness.xlsx", params={"pathway": "ukjent"}).status_code == 422
    download = page.get("/reports/timeliness.csv", params={"pathway": "barn"})
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    column = rows[0].index("Forløp")
    assert {row[column] for row in rows[1:] if row[column]} == {"barn"}
