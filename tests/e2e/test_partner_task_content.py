"""What a partner needs to act on a handover task, and nothing more (issue 14, done when): the police's task of a
high-risk case is due the same day (page, API and FHIR), says whom to call and their phone and the coordinator's
note; the name only under a consent that shares it, the safe contact channel likewise; child welfare is told from a
child's pathway (B2) without consent on its legal basis, with a reason (refused without one), and reads that basis in
words; an agency added in configuration receives a handover with no code change. On SQLite and PostgreSQL.

(NAV hears no reminder for a case where it holds no task: tests/integration/test_scan.py,
test_nav_hears_nothing_of_housing_for_a_case_without_a_nav_task_and_the_coordinator_does, runs the scan at a fixed
now on both databases.)"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from fhir.resources.R4B.task import Task

from pathway import services
from pathway.demo import DEMO_PASSWORD
from pathway.store.tables import user_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import (  # noqa: E402
    API, ROOT, World, _cheap_passwords, _create_database, _drop_database, signed_in, synthetic_person)

pytest_plugins = ["tests.e2e.api_support"]

OSLO = ZoneInfo("Europe/Oslo")
PHONE = "+47 55 00 12 34"  # the coordinator's work phone (invented)
NOTE = "Ring før kl. 15; hun svarer ikke på ukjente nummer"
POLICE_SCOPE = ["name", "contact", "threat_assessment"]
PASSWORD = "lang-nok-passord"  # for the users a test adds (the demo's "demo" is below the minimum for a new one)


def _task(w: World, task_id: Any, user: str = "politi", path: str = "") -> Any:
    r = w.client.get(f"{API}/tasks/{task_id}{path}", headers=w.auth(user))
    assert r.status_code == 200, r.text
    return r.json()


def _article(w: World, task_id: Any, user: str = "politi") -> str:
    """The task's article on the user's /tasks page (all of their tasks, so that it is on the page)."""
    page = signed_in(TestClient(w.app), user, DEMO_PASSWORD).get("/tasks")
    assert page.status_code == 200, page.text
    return _one_article(page.text, task_id)


def _one_article(html: str, task_id: Any) -> str:
    start = html.index(f'id="task-{task_id}"')
    return html[start:html.index("</article>", start)]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace(" ,", ",")


def _set_phone(w: World, username: str, phone: str | None) -> None:
    with w.core.engine.begin() as conn:
        conn.execute(sa.update(user_t).where(user_t.c.username == username).values(phone=phone))


def _end_of_oslo_day(at: datetime) -> datetime:
    day = at.astimezone(OSLO).date()
    return datetime(day.year, day.month, day.day, 23, 59, tzinfo=OSLO)


def _police_task(w: World, person: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """A high-risk case of koordinator's with its police handover (consent, then K6 with a note): (reference, task
    id, the coordinator's view of the task)."""
    reference = w.open_case(person)["reference"]
    detail = w.client.get(f"{API}/cases/{reference}", headers=w.auth("koordinator")).json()
    if detail["coordinator"] != "koordinator":
        w.operate(reference, "coordinator", {"coordinator": "koordinator"})
    w.operate(reference, "risk", {"level": "high", "reason": "trusler om vold etter bruddet"})
    w.operate(reference, "consents/police", {"scope": POLICE_SCOPE})
    detail = w.operate(reference, "handovers", {"code": "K6", "note": NOTE})
    task = next(t for t in detail["handovers"] if t["code"] == "K6" and t["status"] == "requested")
    return reference, task["id"], task


def test_a_high_risk_police_task_is_due_the_same_day_and_says_whom_to_call_and_what_they_wrote(world: World) -> None:
    w = world
    _set_phone(w, "koordinator", PHONE)
    person = synthetic_person()
    reference, task_id, sent = _police_task(w, person)
    assert sent["urgency"] == "high"

    task = _task(w, task_id)
    # Same day: due the end of the Oslo day the task was sent.
    assert task["urgency"] == "high" and task["urgency_name"] == "Høy" and task["same_day"] is True
    due = datetime.fromisoformat(task["due_at"])
    assert due == _end_of_oslo_day(datetime.fromisoformat(sent["created_at"]))
    assert due.astimezone(OSLO).time().isoformat() == "23:59:00"  # the page says the day itself, not tomorrow
    # Whom to call, their phone, what the coordinator wrote; the scope and the basis in words.
    assert task["coordinator"] == "koordinator" and task["phone"] == PHONE and task["note"] == NOTE
    assert task["contact"].startswith("koordinator (")
    assert task["asked"] == POLICE_SCOPE and task["asked_names"] == ["Navn", "Trygg kontaktkanal", "Trusselvurdering"]
    assert task["basis"] == "consent" and task["basis_name"] == "Samtykke" and task["without_consent"] is False
    assert task["person_name"] == person["name"] and task["safe_contact"] == person["safe_contact"]
    assert task["answered_by"] is None and task["reply"] is None
    assert person["address"] not in str(task) and person["birth_date"] not in str(task)
    listed = [t for t in w.client.get(f"{API}/tasks", params={"limit": 200}, headers=w.auth("politi")).json()["items"]
              if t["id"] == task_id]
    assert listed == [task]

    fhir = _task(w, task_id, path="/fhir")
    Task.model_validate(fhir)
    assert fhir["priority"] == "stat"
    assert datetime.fromisoformat(fhir["restriction"]["period"]["end"]) == due
    (role,) = fhir["contained"]
    assert fhir["requester"]["reference"] == "#" + role["id"] and role["resourceType"] == "PractitionerRole"
    assert role["telecom"] == [{"system": "phone", "value": PHONE, "use": "work"}]
    assert role["practitioner"] == {"display": "koordinator"}
    assert {"text": NOTE, "time": fhir["authoredOn"], "authorString": "koordinator"} in fhir["note"]
    assert ("safe-contact", person["safe_contact"]) in [(i["type"]["text"], i["valueString"]) for i in fhir["input"]]
    assert person["address"] not in str(fhir)

    article = _article(w, task_id)
    words = _text(article)
    assert "Haster: tiltak samme dag" in words and "⚠" in article  # text and symbol, not colour alone
    assert "Kontakt koordinator (" in words and f"tlf. {PHONE}" in words
    assert f'href="tel:{PHONE.replace(" ", "")}"' in article
    assert "Hastegrad Høy" in words and "Grunnlag Samtykke" in words
    assert "Navn, Trygg kontaktkanal, Trusselvurdering" in words
    assert NOTE in words and person["name"] in words and person["safe_contact"] in words
    assert "threat_assessment" not in words and person["address"] not in article


def test_no_name_without_the_name_scope_and_no_safe_contact_without_the_contact_scope(world: World) -> None:
    w = world
    person = synthetic_person()
    reference, task_id, _ = _police_task(w, person)
    # The K6 handover needs the scope it lists: the consent is narrowed after it, as the person may ask.
    w.operate(reference, "consents/police", {"scope": ["contact", "threat_assessment"],
                                             "reason": "personen vil ikke at navnet deles"})
    task = _task(w, task_id)
    assert task["person_name"] is None and task["safe_contact"] == person["safe_contact"]
    assert task["asked"] == ["contact", "threat_assessment"] and task["withheld"] == ["name"]
    fhir = _task(w, task_id, path="/fhir")
    assert person["name"] not in str(fhir) and person["safe_contact"] in str(fhir)
    article = _article(w, task_id)
    assert person["name"] not in article and person["safe_contact"] in article

    w.operate(reference, "consents/police", {"scope": ["threat_assessment"], "reason": "bare trusselvurderingen"})
    task = _task(w, task_id)
    assert task["person_name"] is None and task["safe_contact"] is None
    assert task["asked_names"] == ["Trusselvurdering"]
    fhir = _task(w, task_id, path="/fhir")
    assert person["name"] not in str(fhir) and person["safe_contact"] not in str(fhir)
    article = _article(w, task_id)
    assert person["name"] not in article and person["safe_contact"] not in article
    assert "Trygg kontaktkanal" in _text(article)  # named as withheld, never shown
    # Still whom to call and what for.
    assert task["coordinator"] == "koordinator" and task["note"] == NOTE and task["same_day"] is True


def test_the_answer_says_who_answered_and_what_they_wrote(world: World) -> None:
    w = world
    _, task_id, _ = _police_task(w, synthetic_person())
    client = signed_in(TestClient(w.app), "politi")
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/tasks").text)
    token = {"csrf": csrf.group(1)} if csrf else {}
    # No JavaScript: plain forms, each answered by a redirect back to the list.
    r = client.post(f"/tasks/{task_id}/accept", data=token, follow_redirects=False)
    assert r.status_code == 303, r.text
    r = client.post(f"/tasks/{task_id}/complete", data={**token, "note": "besøksforbud begjært"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    task = _task(w, task_id)
    assert task["status"] == "completed" and task["answered_by"] == "politi"
    assert task["reply"] == "besøksforbud begjært"
    assert task["person_name"] is None and task["safe_contact"] is None  # a closed task shows neither
    words = _text(_one_article(client.get("/tasks", params={"status": "completed"}).text, task_id))
    assert "Besvart av politi" in words and "Svar besøksforbud begjært" in words
    fhir = _task(w, task_id, path="/fhir")
    assert {"text": "besøksforbud begjært", "time": fhir["lastModified"], "authorString": "politi"} in fhir["note"]


# -- child welfare: without consent, on its legal basis, with a reason ------------------------------------------


@pytest.fixture
def barnevern(world: World) -> str:
    """The demo's child-welfare contact (the demo has one since child welfare gets work of its own)."""
    world.tokens.setdefault("barnevern", world.login("barnevern"))
    return "barnevern"


CHILD = {"first_name": "Testbarn Ås", "birth_year": 2018, "school": "Fiktiv barneskole"}


def _child_pathway(w: World, person: dict[str, Any]) -> str:
    """A case with children and the first child's own pathway (barn.yaml), opened through the API: its reference."""
    adult = w.open_case(person, conditions=["children"])["reference"]
    r = w.client.post(f"{API}/cases/{adult}/children", json={"child": CHILD},
                      headers={**w.auth("koordinator"), "If-Match": f'"{w.version(adult)}"'})
    assert r.status_code == 201, r.text
    return str(r.json()["reference"])


def test_child_welfare_is_told_without_consent_on_its_duty_with_a_reason_and_reads_the_basis(
        world: World, barnevern: str) -> None:
    """From the child's own pathway (B2), where the child-welfare notice is assessed; the adult's K5 only maps the
    children."""
    w = world
    person = synthetic_person()
    reference = _child_pathway(w, person)
    refused = w.client.post(f"{API}/cases/{reference}/handovers",
                            json={"code": "B2", "legal_basis": "child_welfare_duty"},
                            headers={**w.auth("koordinator"), "If-Match": f'"{w.version(reference)}"'})
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers.get("content-language") == "nb"
    problem = refused.json()
    assert problem["code"] == "invalid-argument"
    assert [e["loc"] for e in problem["errors"]] == [["body", "reason"]]  # the field it lacks
    assert problem["detail"].startswith("Begrunnelse: "), problem  # in bokmål, without asking
    assert not any(t["code"] == "B2" for t in w.client.get(f"{API}/cases/{reference}",
                                                             headers=w.auth("koordinator")).json()["handovers"])

    detail = w.operate(reference, "handovers", {"code": "B2", "legal_basis": "child_welfare_duty",
                                                "reason": "barnet har sett volden"})
    task_id = next(t["id"] for t in detail["handovers"] if t["code"] == "B2")
    task = _task(w, task_id, barnevern)
    assert task["basis"] == "child_welfare_duty" and task["without_consent"] is True
    assert task["basis_name"] == "Opplysningsplikt til barnevernet (barnevernsloven § 13-2)"
    assert task["asked"] == [] and task["person_name"] is None and task["safe_contact"] is None
    assert task["task"] == "Melding til barnevernet vurdert"
    article = _article(w, task_id, barnevern)
    for never in (person["name"], person["address"], CHILD["first_name"], CHILD["school"]):
        assert never not in article, never  # no consent, nothing of the parent's or the child's
    words = _text(article)
    assert "Sendt uten samtykke; hjemmel: Opplysningsplikt til barnevernet (barnevernsloven § 13-2)" in words
    assert "child_welfare_duty" not in words
    fhir = _task(w, task_id, barnevern, "/fhir")
    Task.model_validate(fhir)
    assert {"text": "Sendt uten samtykke. Hjemmel: Opplysningsplikt til barnevernet (barnevernsloven § 13-2); "
                    "legal-basis: child_welfare_duty."} in fhir["note"]
    # The police see none of it.
    assert w.client.get(f"{API}/tasks/{task_id}", headers=w.auth("politi")).status_code == 404


# -- an agency added in configuration, no code ------------------------------------------------------------------

NEW_AGENCY = """
  family_counselling: {nb: Familievernet, en: Family counselling, scopes: [name, contact]}
"""
NEW_CODE = "K90"  # a code no shipped checkpoint has (the shipped definition grows: K15 is taken since version 3)
NEW_CHECKPOINT = f"""
  - code: {NEW_CODE}""" + """
    name: {nb: Overlevering til familievernet, en: Handover to family counselling}
    phases: [intake, support]
    owner: family_counselling
    needs: [K4]
    completed_by: handover
    handover:
      agency: family_counselling
      scope: [name, contact]
    deadline: {after: consent.family_counselling, working_days: 5}
"""


def _definitions_with_a_new_agency(directory: Path) -> Path:
    """The shipped definitions, and beside them a copy of krisesenter (as krisesenter_test) whose configuration
    adds the agency family_counselling and a checkpoint handing over to it."""
    directory.mkdir()
    shutil.copy(ROOT / "definitions" / "krisesenter.yaml", directory)
    shutil.copy(ROOT / "definitions" / "pathway.schema.json", directory)
    text = (ROOT / "definitions" / "krisesenter.yaml").read_text(encoding="utf-8")
    assert f"code: {NEW_CODE}\n" not in text, f"{NEW_CODE} is shipped now: pick another code"
    text = text.replace("\nid: krisesenter\n", "\nid: krisesenter_test\n", 1)
    text = text.replace("\nagencies:\n", "\nagencies:" + NEW_AGENCY, 1)
    text = text.replace("\n  - code: K13\n", NEW_CHECKPOINT + "\n  - code: K13\n", 1)
    assert "family_counselling: {nb: Familievernet" in text and f"code: {NEW_CODE}" in text
    assert "id: krisesenter_test" in text
    (directory / "krisesenter_test.yaml").write_text(text, encoding="utf-8")
    return directory


@pytest.fixture(params=["sqlite", "postgresql"])
def configured(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app on its own empty database, its definitions read from FORLOP_DEFINITIONS_DIR (a directory of ours)."""
    from api.app import create_app
    from pathway.bootstrap import bootstrap
    from pathway.settings import Settings

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'forlop.db'}"
    elif postgres_url is None:
        pytest.skip("PostgreSQL not reachable (required and run under CI)")
    else:
        url = _create_database(postgres_url, "agency")
    monkeypatch.setenv("FORLOP_DEFINITIONS_DIR", str(_definitions_with_a_new_agency(tmp_path / "definitions")))
    settings = Settings(env="test", database_url=url, scheduler="off")
    core = bootstrap(settings)
    try:
        with _cheap_passwords():
            for username, role, unit in (("admin", "admin", None), ("koordinator", "coordinator", "bergen-sentrum")):
                services.add_user(engine=core.engine, username=username, role=role, unit=unit,
                                  password=PASSWORD)
            yield TestClient(create_app(core))
    finally:
        core.close()
        if request.param == "postgresql":
            _drop_database(postgres_url, url)


def _login(client: TestClient, username: str) -> dict[str, str]:
    r = client.post(f"{API}/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_an_agency_added_in_configuration_receives_a_handover_and_accepts_it(configured: TestClient) -> None:
    client = configured
    admin, coordinator = _login(client, "admin"), _login(client, "koordinator")
    placements = client.get(f"{API}/users/placements", headers=admin).json()
    assert {"id": "family_counselling", "nb": "Familievernet", "en": "Family counselling"} in placements["agencies"]
    r = client.post(f"{API}/users", headers=admin, json={
        "username": "familievern", "role": "partner", "agency": "family_counselling", "password": PASSWORD})
    assert r.status_code == 201, r.text

    r = client.post(f"{API}/cases", headers=coordinator,
                    json={"pathway": "krisesenter_test", "person": synthetic_person()})
    assert r.status_code == 201, r.text
    reference = r.json()["reference"]

    def operate(path: str, body: dict[str, Any]) -> dict[str, Any]:
        version = client.get(f"{API}/cases/{reference}", headers=coordinator).json()["version"]
        r = client.post(f"{API}/cases/{reference}/{path}", json=body,
                        headers={**coordinator, "If-Match": f'"{version}"'})
        assert r.status_code == 200, f"{path}: {r.text}"
        return r.json()  # type: ignore[no-any-return]

    operate("consents/family_counselling", {"scope": ["name", "contact"]})
    detail = operate("handovers", {"code": NEW_CODE, "note": "Ønsker samtale om barna"})
    (sent,) = [t for t in detail["handovers"] if t["code"] == NEW_CODE]
    assert sent["agency"] == "family_counselling"

    partner = _login(client, "familievern")
    listed = client.get(f"{API}/tasks", headers=partner).json()
    assert [t["id"] for t in listed["items"]] == [sent["id"]] and listed["counts"]["requested"] == 1
    (task,) = listed["items"]
    assert task["task"] == "Overlevering til familievernet" and task["asked_names"] == ["Navn", "Trygg kontaktkanal"]
    assert task["note"] == "Ønsker samtale om barna" and task["basis_name"] == "Samtykke"
    fhir = client.get(f"{API}/tasks/{sent['id']}/fhir", headers=partner).json()
    Task.model_validate(fhir)
    assert fhir["owner"]["display"] == "Familievernet" and fhir["owner"]["identifier"]["value"] == "family_counselling"
    r = client.post(f"{API}/tasks/{sent['id']}/accept", headers=partner)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted" and r.json()["answered_by"] == "familievern"
