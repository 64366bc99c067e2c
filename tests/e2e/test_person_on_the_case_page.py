"""The person where the coordinator works, on SQLite and PostgreSQL: the intake form records who the case is about
and how first contact came; the case page shows it (an address protection as a band), the list shows the name,
a name search posts the name in the body; a repeat contact is flagged; every showing is in the access log."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from pathway.store.tables import access_t, case_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, signed_in, synthetic_person  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CODE6 = "Kode 6: strengt fortrolig adresse. Adressen eller hvor personen oppholder seg skal aldri gis ut"
CODE7 = "Kode 7: fortrolig adresse. Adressen skal ikke gis ut."
REPEAT = "Gjentatt kontakt: personen hadde en sak i løpet av de 12 månedene før denne."


def browser(w: World, username: str) -> TestClient:
    return signed_in(TestClient(w.app, raise_server_exceptions=True), username)


def csrf(client: TestClient, path: str = "/cases/new") -> str:
    return CSRF.search(client.get(path).text).group(1)  # type: ignore[union-attr]


def intake(client: TestClient, **fields: str) -> Any:
    return client.post("/cases/new", data={"csrf": csrf(client), **fields}, follow_redirects=False)


def opened(client: TestClient, **fields: str) -> str:
    r = intake(client, **fields)
    assert r.status_code == 303, r.text
    return str(r.headers["location"]).rsplit("/", 1)[1]


def unique_name() -> str:
    return str(synthetic_person()["name"])


def person_section(html: str) -> str:
    found = re.search(r'<section class="card person".*?</section>', html, re.S)
    assert found, "the case page has no person section"
    return found.group(0)


def access_rows(w: World, username: str, action: str, reference: str | None = None) -> list[Any]:
    query = sa.select(access_t.c.case_reference, access_t.c.break_glass).where(
        access_t.c.username == username, access_t.c.action == action)
    if reference is not None:
        query = query.where(access_t.c.case_reference == reference)
    with w.core.engine.connect() as conn:
        return list(conn.execute(query))


def test_the_intake_form_records_the_person_and_how_first_contact_came(world: World) -> None:
    w = world
    client = browser(w, "koordinator")
    name = unique_name()
    reference = opened(client, person_name=name, person_safe_contact="+47 000 11 222",
                       person_address_protection="code6", person_children_ages="4, 9",
                       person_interpreter_language="tigrinja", person_home_municipality="Askøy",
                       contact_channel="police_escort")
    person = w.client.get(f"{API}/cases/{reference}/person", headers=w.auth("koordinator")).json()
    assert (person["name"], person["address_protection"], person["children_ages"], person["interpreter_language"],
            person["home_municipality"]) == (name, "code6", [4, 9], "tigrinja", "Askøy")
    detail = w.client.get(f"{API}/cases/{reference}", headers=w.auth("koordinator")).json()
    assert detail["timeline"][0]["payload"]["contact_channel"] == "police_escort"
    assert "children" in detail["conditions"]  # children registered: the children's checkpoint applies

    section = person_section(client.get(f"/cases/{reference}").text)
    assert CODE6 in section and CODE7 not in section
    for shown in (name, "+47 000 11 222", "4, 9 år", "tigrinja", "Askøy", "Fulgt av politiet"):
        assert shown in section, shown
    assert REPEAT not in section


def test_code_7_is_its_own_band_and_a_case_without_a_person_says_so(world: World) -> None:
    client = browser(world, "koordinator")
    code7 = opened(client, person_name=unique_name(), person_address_protection="code7")
    seven = person_section(client.get(f"/cases/{code7}").text)
    assert CODE7 in seven and CODE6 not in seven and "Ikke registrert" in seven  # no channel, no municipality
    nobody = person_section(client.get(f"/cases/{opened(client, contact_channel='phone')}").text)
    assert "Saken har ingen personopplysninger." in nobody and "Telefon" in nobody
    assert "Kode 6" not in nobody and "Kode 7" not in nobody


@pytest.mark.parametrize("fields", [
    {"person_home_municipality": "Oslo"}, {"person_children_ages": "fire, 9"}, {"contact_channel": "brevdue"}])
def test_a_refused_intake_says_so_keeps_what_was_typed_and_opens_nothing(world: World, fields: dict[str, str]) -> None:
    w = world
    client = browser(w, "koordinator")
    with w.core.engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(case_t)).scalar_one()
    name = unique_name()
    r = intake(client, person_name=name, **fields)
    assert r.status_code == 422
    errors = re.search(r'<div class="alert alert-error" role="alert">.*?</div>', r.text, re.S)
    assert errors and name not in errors.group(0) and next(iter(fields.values())) not in errors.group(0)
    assert f'value="{name}"' in r.text  # kept in the form, so nothing is typed twice
    with w.core.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(case_t)).scalar_one() == before


def test_the_list_names_the_units_people_and_logs_each_case_shown(world: World) -> None:
    w = world
    client = browser(w, "koordinator")
    name = unique_name()
    reference = opened(client, person_name=name)
    listed = client.get("/cases", params={"q": reference})
    assert listed.status_code == 200
    row = re.search(rf'<tr[^>]*>\s*<th scope="row"><a href="/cases/{reference}">.*?</tr>', listed.text, re.S)
    assert row and name in row.group(0)
    assert [r.break_glass for r in access_rows(w, "koordinator", "person.list", reference)] == [False]
    other = browser(w, "koordinator2").get("/cases", params={"status": "all"})
    assert other.status_code == 200 and name not in other.text
    assert access_rows(w, "koordinator2", "person.list", reference) == []


def test_the_case_page_logs_its_decryption_as_the_api_does(world: World) -> None:
    w = world
    client = browser(w, "koordinator")
    reference = opened(client, person_name=unique_name())
    assert access_rows(w, "koordinator", "person.read", reference) == []
    client.get(f"/cases/{reference}")
    client.get(f"/cases/{reference}")
    assert len(access_rows(w, "koordinator", "person.read", reference)) == 2
    nobody = opened(client)
    client.get(f"/cases/{nobody}")
    assert access_rows(w, "koordinator", "person.read", nobody) == []  # nothing decrypted, nothing to log


def test_the_name_search_posts_the_name_in_the_body_and_finds_only_my_units_cases(world: World) -> None:
    w = world
    client = browser(w, "koordinator")
    name = unique_name()
    reference = opened(client, person_name=name)
    assert 'action="/cases/search"' in client.get("/cases").text and 'method="post"' in client.get("/cases").text
    found = client.post("/cases/search", data={"csrf": csrf(client, "/cases"), "name": name})
    assert found.status_code == 200 and f'href="/cases/{reference}"' in found.text and name in found.text
    assert name not in str(found.url) and all(name not in link for link in re.findall(r'href="([^"]*)"', found.text))
    assert access_rows(w, "koordinator", "case.search_by_name") and access_rows(w, "koordinator", "person.list",
                                                                                reference)
    other = browser(w, "koordinator2")
    elsewhere = other.post("/cases/search", data={"csrf": csrf(other, "/cases"), "name": name})
    assert elsewhere.status_code == 200 and reference not in elsewhere.text
    assert "Ingen sak i enheten din har dette navnet." in elsewhere.text
    empty = client.post("/cases/search", data={"csrf": csrf(client, "/cases"), "name": ""})
    assert empty.status_code == 422 and "Skriv hele navnet du vil søke etter." in empty.text
    # without the form's token nothing is searched
    assert client.post("/cases/search", data={"name": name}).status_code == 403


def test_a_repeat_contact_is_flagged_on_the_case_and_in_the_list(world: World) -> None:
    w = world
    client = browser(w, "koordinator")
    name = unique_name()
    first = opened(client, person_name=name)
    again = opened(client, person_name=name, contact_channel="walk_in")
    other = opened(client, person_name=unique_name())
    assert REPEAT in person_section(client.get(f"/cases/{again}").text)
    assert REPEAT not in person_section(client.get(f"/cases/{first}").text)
    assert REPEAT not in person_section(client.get(f"/cases/{other}").text)
    listed = client.get("/cases", params={"q": again}).text
    assert "Gjentatt kontakt" in listed
    assert "Gjentatt kontakt" not in client.get("/cases", params={"q": other}).text
    with w.core.engine.connect() as conn:
        flags = dict(conn.execute(sa.select(case_t.c.reference, case_t.c.repeat_contact)
                                  .where(case_t.c.reference.in_([first, again, other]))).all())
    assert flags == {first: False, again: True, other: False}


def test_emergency_access_read_only_shows_the_person_marked_as_emergency_in_the_log(world: World) -> None:
    w = world
    name = unique_name()
    reference = opened(browser(w, "koordinator"), person_name=name, person_address_protection="code6")
    outsider = browser(w, "koordinator2")
    assert outsider.get(f"/cases/{reference}").status_code == 404
    assert access_rows(w, "koordinator2", "person.read", reference) == []
    granted = w.client.post(f"{API}/cases/{reference}/break-glass", headers=w.auth("koordinator2"),
                            json={"reason": "akutt henvendelse utenfor åpningstid"})
    assert granted.status_code in (200, 201) and granted.json()["access"] == "read"
    section = person_section(outsider.get(f"/cases/{reference}").text)
    assert name in section and CODE6 in section and "nødtilgang" in section
    assert [r.break_glass for r in access_rows(w, "koordinator2", "person.read", reference)] == [True]
    # the list and the search stay their own unit's: emergency access is to the case, not to the list
    assert name not in outsider.get("/cases", params={"status": "all"}).text
