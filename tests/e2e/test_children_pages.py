"""The children's pathways on the case page (issue 16, measure 11), on SQLite and PostgreSQL: a coordinator adds a
child on the adult's case page (through the API's own handler, under the version check), sees the children's
pathways together there and each on its own page; the school handover warns when the other parent shares parental
responsibility; pausing the adult's clock leaves the children's running unless asked. Every read of the children is
in the access log."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from pathway import services
from pathway.store.tables import access_t, case_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, signed_in, synthetic_person  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CHILD_COORDINATOR = "barnekoordinator"
SHARED = "shared_parental_responsibility"
WARNING = "Den andre forelderen har del i foreldreansvaret og kan få opplysninger fra skolen eller barnehagen."


@pytest.fixture(scope="module")
def w(world: World) -> World:
    """The world with a second coordinator in bergen-sentrum, to be a child's own coordinator."""
    services.add_user(engine=world.core.engine, username=CHILD_COORDINATOR, role="coordinator",
                      unit="bergen-sentrum")
    return world


def browser(w: World, username: str = "koordinator") -> TestClient:
    return signed_in(TestClient(w.app, raise_server_exceptions=True), username)


def adult_case(w: World) -> str:
    reference = w.open_case(synthetic_person())["reference"]
    w.operate(reference, "coordinator", {"coordinator": "koordinator"})
    return str(reference)


def page_form(client: TestClient, reference: str) -> dict[str, str]:
    html = client.get(f"/cases/{reference}").text
    return {"csrf": CSRF.search(html).group(1),  # type: ignore[union-attr]
            "version": re.search(r'name="version" value="(\d+)"', html).group(1)}  # type: ignore[union-attr]


def add_child(client: TestClient, reference: str, *, conditions: tuple[str, ...] = (), **fields: str) -> Any:
    data: dict[str, Any] = {**page_form(client, reference), **fields}
    if conditions:
        data["conditions"] = list(conditions)
    return client.post(f"/cases/{reference}/children", data=data, follow_redirects=False)


def section(html: str, id_: str) -> str:
    found = re.search(rf'<section[^>]*id="{id_}".*?</section>', html, re.S)
    assert found, f"the page has no section {id_}"
    return found.group(0)


def children_of(w: World, reference: str) -> list[str]:
    with w.core.engine.connect() as conn:
        parent = sa.select(case_t.c.id).where(case_t.c.reference == reference).scalar_subquery()
        return list(conn.execute(sa.select(case_t.c.reference).where(case_t.c.parent_id == parent)
                                 .order_by(case_t.c.reference)).scalars())


def logged(w: World, action: str, reference: str) -> int:
    with w.core.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(access_t).where(
            access_t.c.action == action, access_t.c.case_reference == reference)).scalar_one())


def test_children_added_on_the_case_page_are_listed_there_with_their_own_pathways(w: World) -> None:
    client = browser(w)
    reference = adult_case(w)
    assert "Ingen barn har eget forløp i denne saken." in section(client.get(f"/cases/{reference}").text, "children")
    r = add_child(client, reference, first_name="Testbarn Ås", birth_year="2016", school="Påfunnet skole",
                  conditions=(SHARED,), coordinator=CHILD_COORDINATOR)
    assert r.status_code == 303 and r.headers["location"] == f"/cases/{reference}?done=children#children"
    assert add_child(client, reference, first_name="Testbarn Øy", birth_year="2021").status_code == 303
    first, second = children_of(w, reference)
    # References of their own, never the adult's with a suffix (a reference travels where names may not).
    assert len({reference, first, second}) == 3 and not first.startswith(reference) and not second.startswith(reference)

    before = logged(w, "child.read", reference)
    html = client.get(f"/cases/{reference}?done=children").text
    assert logged(w, "child.read", reference) == before + 1  # one read for the whole list, logged
    listed = section(html, "children")
    assert "Barnas forløp" in listed and "Lagret." in listed
    rows = re.findall(r'<tr class="[^"]*" data-reference="([^"]+)">(.*?)</tr>', listed, re.S)
    assert [ref for ref, _ in rows] == [first, second]
    one, two = (row for _, row in rows)
    for shown in (f'href="/cases/{first}"', "Testbarn Ås", "2016", "Påfunnet skole", "Barnets forløp på krisesenteret",
                  "Mottak", CHILD_COORDINATOR):
        assert shown in one, shown
    for shown in (f'href="/cases/{second}"', "Testbarn Øy", "2021", "Ikke registrert", "koordinator"):
        assert shown in two, shown
    assert CHILD_COORDINATOR not in two  # the second child's coordinator is the case's
    assert re.search(r'<time datetime="[^"]+">[^<]+</time> <span class="how-late[^"]*">frist [^<]+</span>', one)
    # The child's coordinator is their own: the API reads the same.
    detail = w.client.get(f"{API}/cases/{first}", headers=w.auth("koordinator")).json()
    assert (detail["coordinator"], detail["part_of"], detail["conditions"]) == (CHILD_COORDINATOR, reference, [SHARED])
    # The person is still the adult's, and the adult's timeline says a child's pathway was opened.
    assert section(html, "person")


def test_a_childs_page_is_part_of_the_case_shows_the_child_and_warns_before_the_school_handover(w: World) -> None:
    client = browser(w)
    reference = adult_case(w)
    add_child(client, reference, first_name="Testbarn Ås", birth_year="2016", school="Påfunnet skole",
              conditions=(SHARED,))
    add_child(client, reference, first_name="Testbarn Øy", birth_year="2019")
    shared, other = children_of(w, reference)

    before = logged(w, "child.read", shared)
    html = client.get(f"/cases/{shared}").text
    assert logged(w, "child.read", shared) == before + 1
    assert re.search(rf'Del av sak <a href="/cases/{reference}">{reference}</a>', html)
    child = section(html, "child")
    for shown in ("Testbarn Ås", "2016", "Påfunnet skole"):
        assert shown in child, shown
    assert 'id="person"' not in html and 'id="children"' not in html  # the child's record, not the adult's person
    assert "Testbarn Øy" not in html  # the other child is on its own page
    for code in ("B1", "B2", "B3"):
        assert re.search(rf'<th scope="row">{code} ', section(html, "steps")), code
    assert 'id="timeline"' in html
    handovers = section(html, "handovers")
    school = re.search(r"<details><summary>Send overlevering: Skole eller barnehage \(B3\)</summary>.*?</details>",
                       handovers, re.S)
    assert school and WARNING in school.group(0)
    welfare = re.search(r"<summary>Send overlevering: Barnevernet \(B2\)</summary>.*?</details>", handovers, re.S)
    assert welfare and WARNING not in welfare.group(0)  # the warning is the school handover's only
    assert WARNING not in client.get(f"/cases/{other}").text  # no shared parental responsibility: no warning


def test_a_bad_child_says_which_field_in_bokmal_and_opens_nothing(w: World) -> None:
    client = browser(w)
    reference = adult_case(w)
    r = add_child(client, reference, first_name="Testbarn Ås", birth_year="tjue")
    assert r.status_code == 422
    errors = re.search(r'<div class="alert alert-error" role="alert">.*?</div>', r.text, re.S)
    assert errors and "Fødselsår: Oppgi et helt tall." in errors.group(0) and "tjue" not in errors.group(0)
    assert 'value="Testbarn Ås"' in r.text  # kept in the form, so nothing is typed twice
    r = add_child(client, reference, birth_year="2016")
    assert r.status_code == 422 and "Fornavn: Må fylles ut." in r.text
    r = add_child(client, reference, first_name="Testbarn Ås", birth_year="2016", coordinator="partner-nav")
    assert r.status_code == 422  # not one of the unit's coordinators: refused by the service, said on the page
    assert "ikke en aktiv koordinator ved sakens enhet" in r.text
    assert children_of(w, reference) == []


def test_a_stale_version_is_the_pages_conflict_and_adds_no_child(w: World) -> None:
    client = browser(w)
    reference = adult_case(w)
    form = page_form(client, reference)
    w.operate(reference, "risk", {"level": "low"})  # someone else changes the case meanwhile
    r = client.post(f"/cases/{reference}/children",
                    data={**form, "first_name": "Testbarn Ås", "birth_year": "2016"}, follow_redirects=False)
    assert r.status_code == 409 and "Noen andre endret saken mens du arbeidet med den." in r.text
    assert children_of(w, reference) == []


def test_pausing_the_adults_clock_leaves_the_childrens_running_unless_asked(w: World) -> None:
    client = browser(w)
    reference = adult_case(w)
    add_child(client, reference, first_name="Testbarn Ås", birth_year="2016")
    (child,) = children_of(w, reference)
    html = client.get(f"/cases/{reference}").text
    assert "Sett også barnas forløp på pause" in html

    def paused(ref: str) -> bool:
        return w.client.get(f"{API}/cases/{ref}", headers=w.auth("koordinator")).json()["paused_since"] is not None

    r = client.post(f"/cases/{reference}/do/pause", data={**page_form(client, reference), "reason": "på sykehus"},
                    follow_redirects=False)
    assert r.status_code == 303 and paused(reference) and not paused(child)
    html = client.get(f"/cases/{reference}").text
    assert "pauset" not in section(html, "children")  # the child's pathway is still running
    assert "Start også barnas forløp igjen" in html
    r = client.post(f"/cases/{reference}/do/resume", data=page_form(client, reference), follow_redirects=False)
    assert r.status_code == 303 and not paused(reference)
    r = client.post(f"/cases/{reference}/do/pause",
                    data={**page_form(client, reference), "children": "yes", "reason": "på sykehus"},
                    follow_redirects=False)
    assert r.status_code == 303 and paused(reference) and paused(child)
    assert "‖ pauset" in section(client.get(f"/cases/{reference}").text, "children")
    # The children's checkbox is only where the case has children.
    assert "Sett også barnas forløp på pause" not in client.get(f"/cases/{adult_case(w)}").text


def test_emergency_access_shows_the_children_read_only_and_logs_it_as_emergency_access(w: World) -> None:
    reference = adult_case(w)
    add_child(browser(w), reference, first_name="Testbarn Ås", birth_year="2016")
    (child,) = children_of(w, reference)
    r = w.client.post(f"{API}/cases/{reference}/break-glass", json={"reason": "personen er innlagt, trenger oversikt"},
                      headers=w.auth("koordinator2"))  # bergen-nord: another unit
    assert r.status_code in (200, 201), r.text
    other = browser(w, "koordinator2")
    listed = section(other.get(f"/cases/{reference}").text, "children")
    assert "Testbarn Ås" in listed and "Du ser barna med nødtilgang" in listed
    assert 'action="/cases/' not in listed  # read-only: no form to add a child
    assert "Testbarn Ås" in section(other.get(f"/cases/{child}").text, "child")  # the grant covers the family
    with w.core.engine.connect() as conn:
        rows = list(conn.execute(sa.select(access_t.c.case_reference, access_t.c.break_glass).where(
            access_t.c.username == "koordinator2", access_t.c.action == "child.read")))
    # The adult's page logs the case and each child read; the child's page its own child.
    assert sorted(rows) == sorted([(reference, True), (child, True), (child, True)])
    # A coordinator of another unit without emergency access sees nothing of the children.
    assert browser(w, "koordinator3").get(f"/cases/{child}").status_code == 404


def test_the_childrens_section_in_english(w: World) -> None:
    client = browser(w)
    reference = adult_case(w)
    add_child(client, reference, first_name="Testbarn Ås", birth_year="2016", conditions=(SHARED,))
    (child_reference,) = children_of(w, reference)
    client.cookies.set("forlop_lang", "en")
    listed = section(client.get(f"/cases/{reference}").text, "children")
    for shown in ("Children&#39;s pathways", "The child&#39;s pathway at the crisis centre", "Intake", "Add a child",
                  "The other parent shares parental responsibility", "The child&#39;s coordinator"):
        assert shown in listed, shown
    child = client.get(f"/cases/{child_reference}").text
    assert f'Part of case <a href="/cases/{reference}">' in child
    assert "The other parent shares parental responsibility and may get information" in child
