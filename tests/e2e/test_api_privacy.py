"""No person data leaves the case record: partners and managers never see a name, an address or a birth date.

Every person record of the seeded data is decrypted (``pathway.services.read_person``) into a list of strings
that must never appear: the name, the address and each part of it, the birth date. Then every GET route a
partner or a manager may call (from the route table), and the partner's accept and complete, are called, and
no body may contain any of them. The exceptions are the partner's task while it is open: the person's name, and
only when the consent's scope includes "name"; and the person's copy (right of access), which an administrator
exports for the person (``test_person_copy``). Error responses (4xx) never echo a person field, to anyone.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from pathway import services
from pathway.people import PersonRecord
from pathway.scheduler import run_scan
from pathway.store.tables import handover_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import (  # noqa: E402
    API,
    ROLE_OF_ACTOR,
    World,
    allow_of,
    api_routes,
    digest_on_a_working_day,
    is_public,
    signed_in,
    synthetic_person,
)

pytest_plugins = ["tests.e2e.api_support"]

POLICE_SCOPE = ["name", "contact", "threat_assessment"]


@dataclass(frozen=True)
class Secret:
    text: str
    reference: str
    what: str  # name, address, address part, birth date


def _secrets(person: PersonRecord, reference: str) -> Iterator[Secret]:
    yield Secret(person.name, reference, "name")
    bare = re.sub(r"\s*\d+$", "", person.name)  # "Kari Testesen 0007" -> "Kari Testesen"
    if bare != person.name and " " in bare:
        yield Secret(bare, reference, "name")
    if person.address:
        yield Secret(person.address, reference, "address")
        for part in (p.strip() for p in person.address.split(",")):
            if part:
                yield Secret(part, reference, "address part")
            for word in part.split():
                if len(word) >= 5 and not word.isdigit():  # a street or a town; bare numbers match anything
                    yield Secret(word, reference, "address part")
    if person.birth_date:
        yield Secret(person.birth_date.isoformat(), reference, "birth date")
        yield Secret(person.birth_date.strftime("%d.%m.%Y"), reference, "birth date")


def all_secrets(w: World) -> tuple[dict[str, PersonRecord], list[Secret]]:
    persons: dict[str, PersonRecord] = {}
    for reference in w.references():
        person = services.read_person(uow=w.core.uow(), reference=reference, keys=w.core.keys)
        if person is not None:
            persons[reference] = person
    secrets = sorted({s for ref, p in persons.items() for s in _secrets(p, ref)}, key=lambda s: s.text)
    assert len(persons) >= 30 and secrets
    return persons, secrets


def leaks(text: str, secrets: list[Secret]) -> list[Secret]:
    return [s for s in secrets if s.text in text]


@dataclass
class Seen:
    label: str
    status: int
    body: Any
    text: str


class Sweep:
    """Calls made as one user, all answers kept."""

    def __init__(self, w: World, username: str) -> None:
        self.w, self.username, self.seen = w, username, []  # type: ignore[var-annotated]

    def call(self, method: str, path: str, **kwargs: Any) -> Seen:
        headers = {**self.w.auth(self.username), **kwargs.pop("headers", {})}
        r = self.w.lenient.request(method, path, headers=headers, **kwargs)
        try:
            body: Any = r.json()
        except ValueError:
            body = r.text
        seen = Seen(f"{method} {path} {kwargs.get('params', '')}", r.status_code, body, r.text)
        self.seen.append(seen)
        assert r.status_code < 500, f"{seen.label}: {r.status_code} {r.text}"
        return seen


def _scrub_allowed_names(body: Any, persons: dict[str, PersonRecord], shown: list[tuple[str, str]]) -> Any:
    """The body with each legitimately shown name blanked: a task (or FHIR Task) whose scope includes "name"
    may carry exactly its own case's person's name. Every name so shown is noted in ``shown``."""
    if isinstance(body, list):
        return [_scrub_allowed_names(b, persons, shown) for b in body]
    if not isinstance(body, dict):
        return body
    body = dict(body)
    if isinstance(body.get("items"), list):  # a page of tasks, in its envelope
        body["items"] = _scrub_allowed_names(body["items"], persons, shown)
    if "person_name" in body and body.get("person_name") is not None:
        ref = body["case_reference"]
        if "name" in body.get("asked", []) and body["status"] in ("requested", "accepted") \
                and body["person_name"] == persons[ref].name:
            shown.append((ref, body["person_name"]))
            body["person_name"] = "<allowed>"
    if body.get("resourceType") == "Task":
        ref = next(i["value"] for i in body["identifier"] if i["system"].endswith("/case-reference"))
        scope = [i["valueString"] for i in body.get("input", []) if i["type"]["text"] == "consent-scope"]
        inputs = []
        for i in body.get("input", []):
            if i["type"]["text"] == "name" and "name" in scope and i["valueString"] == persons[ref].name \
                    and body["status"] in ("requested", "accepted"):
                shown.append((ref, i["valueString"]))
                i = {**i, "valueString": "<allowed>"}
            inputs.append(i)
        body["input"] = inputs
    return body


PERSONS_COPY = f"{API}/cases/{{reference}}/copy"


def _fill(path: str, **values: str) -> str:
    return path.format(pathway_id="krisesenter", version="1", **values)


def _gets_for(w: World, role: str) -> list[str]:
    """The GET routes the role may call (or public ones), from the route table."""
    out = []
    for route in api_routes(w.app):
        rule = allow_of(route)
        if route.method == "GET" and (is_public(route) or (rule is not None and role in rule.roles)):
            out.append(route.path)
    return out


@pytest.fixture(scope="module")
def scene(world: World) -> dict[str, Any]:
    """Two police handovers made through the API: one with consent to share the name, one without any name."""
    w = world
    with_name, task_with_name = w.handover_case("police", scope=POLICE_SCOPE)
    # Consent without the name does not cover the police handover's scope: refused, naming what is missing.
    without_name = w.open_case(synthetic_person())["reference"]
    w.operate(without_name, "consents/police", {"scope": ["contact", "threat_assessment"]})
    refused = w.operate(without_name, "handovers", {"code": "K6"}, expect=409)
    assert refused["type"] == "/problems/consent-required"
    assert refused["agency"] == "police" and refused["missing_scope"] == ["name"]
    # Averting serious crime needs no consent: the police get the task, and nothing of the person.
    detail = w.operate(without_name, "handovers", {"code": "K6", "legal_basis": "avert_crime",
                                                   "reason": "fare for nye overgrep"})
    task_without_name = uuid.UUID(next(t["id"] for t in detail["handovers"] if t["code"] == "K6"))
    # Reminders for everyone (partners, coordinators) and the managers' daily digest, so that the inboxes have content.
    result = run_scan(w.core, now=datetime.now(timezone.utc) + timedelta(days=60))
    assert result.notifications > 0
    assert digest_on_a_working_day(w.core, datetime.now(timezone.utc) + timedelta(days=60)).units > 0
    return {"with_name": (with_name, task_with_name), "without_name": (without_name, task_without_name)}


def _check(sweeps: list[Sweep], persons: dict[str, PersonRecord], secrets: list[Secret]) -> list[tuple[str, str]]:
    shown: list[tuple[str, str]] = []
    problems = []
    for sweep in sweeps:
        for seen in sweep.seen:
            scrubbed = _scrub_allowed_names(seen.body, persons, shown)
            text = json.dumps(scrubbed, ensure_ascii=False) if not isinstance(scrubbed, str) else scrubbed
            for s in leaks(text, secrets):
                problems.append(f"{sweep.username}: {seen.label} ({seen.status}) shows the {s.what} of {s.reference}")
    assert not problems, "\n".join(problems)
    return shown


def test_partners_see_no_person_but_the_name_their_consent_allows(world: World, scene: dict[str, Any]) -> None:
    w = world
    persons, secrets = all_secrets(w)
    with_name, task_with_name = scene["with_name"]
    without_name, task_without_name = scene["without_name"]
    with w.core.engine.connect() as conn:
        all_tasks = [str(t) for t in conn.execute(sa.select(handover_t.c.id)).scalars()]
    assert len(all_tasks) > 5

    sweeps = []
    for username in ("politi", "nav"):
        sweep = Sweep(w, username)
        sweeps.append(sweep)
        for path in _gets_for(w, "partner"):
            if "{task_id}" in path:
                for task_id in all_tasks:  # every task of every agency: the others' answer 404
                    sweep.call("GET", _fill(path, task_id=task_id))
            elif path == f"{API}/tasks":
                for only in ({}, *({"status": s} for s in ("requested", "accepted", "declined", "completed",
                                                           "cancelled", "open")), {"overdue": True}):
                    sweep.call("GET", path, params={**only, "limit": 200})
            elif path == f"{API}/inbox":
                sweep.call("GET", path)
                sweep.call("GET", path, params={"unread": True})
            else:
                sweep.call("GET", _fill(path))
    police = sweeps[0]

    # The task with the name, while it is open: the police see exactly that one name, in list, task and FHIR.
    one = police.call("GET", f"{API}/tasks/{task_with_name}").body
    assert one["person_name"] == persons[with_name].name and "name" in one["asked"]
    fhir = police.call("GET", f"{API}/tasks/{task_with_name}/fhir").body
    assert {"type": {"text": "name"}, "valueString": persons[with_name].name} in fhir["input"]
    # The task handed over without consent: no name, no scope at all.
    other = police.call("GET", f"{API}/tasks/{task_without_name}").body
    assert other["person_name"] is None and other["asked"] == [] and other["basis"] == "avert_crime"
    assert persons[without_name].name not in police.call("GET", f"{API}/tasks/{task_without_name}/fhir").text
    # NAV sees none of the police's tasks.
    assert Sweep(w, "nav").call("GET", f"{API}/tasks/{task_with_name}").status == 404

    # Accept and complete, as the police: the answers are checked too; a completed task no longer names anyone.
    for task_id in (task_with_name, task_without_name):
        assert police.call("POST", f"{API}/tasks/{task_id}/accept").status == 200
        done = police.call("POST", f"{API}/tasks/{task_id}/complete", json={"note": "kontakt opprettet"})
        assert done.status == 200 and done.body["status"] == "completed" and done.body["person_name"] is None
    assert police.call("GET", f"{API}/tasks/{task_with_name}").body["person_name"] is None

    shown = _check(sweeps, persons, secrets)
    shown_refs = {ref for ref, _ in shown}
    assert with_name in shown_refs and without_name not in shown_refs
    # (each name shown was checked by _scrub_allowed_names: an open task, "name" in its scope, its own person)


def _police_task_showing_the_name(w: World) -> tuple[str, uuid.UUID, str, Sweep]:
    """A K6 task under a consent that covers the name, as the police see it: (reference, task id, name, police)."""
    reference, task_id = w.handover_case("police", scope=POLICE_SCOPE)
    name = synthetic_name(w, reference)
    police = Sweep(w, "politi")
    assert police.call("GET", f"{API}/tasks/{task_id}").body["person_name"] == name
    return reference, task_id, name, police


def test_consent_withdrawn_cancels_the_task_and_hides_the_name(world: World) -> None:
    w = world
    reference, task_id, name, police = _police_task_showing_the_name(w)
    w.operate(reference, "consents/police", {"scope": [], "given": False, "reason": "personen trakk samtykket"})
    after = police.call("GET", f"{API}/tasks/{task_id}").body
    assert after["status"] == "cancelled" and after["person_name"] is None
    assert name not in police.call("GET", f"{API}/tasks/{task_id}/fhir").text


def test_consent_narrowed_after_the_handover_narrows_the_open_task_at_once(world: World) -> None:
    w = world
    reference, task_id, name, police = _police_task_showing_the_name(w)
    w.operate(reference, "consents/police", {"scope": ["contact", "threat_assessment"]})
    one = police.call("GET", f"{API}/tasks/{task_id}").body
    assert one["status"] == "requested" and one["person_name"] is None
    assert one["asked"] == ["contact", "threat_assessment"]
    listed = [t for t in police.call("GET", f"{API}/tasks", params={"limit": 200}).body["items"]
              if t["id"] == str(task_id)]
    assert listed and listed[0]["person_name"] is None and "name" not in listed[0]["asked"]
    fhir = police.call("GET", f"{API}/tasks/{task_id}/fhir")
    assert name not in fhir.text and '"name"' not in json.dumps([i["type"] for i in fhir.body.get("input", [])])
    page = signed_in(TestClient(w.app), "politi").get("/tasks")
    assert page.status_code == 200 and name not in page.text
    # Widened again, the task shows the name again: what is shown follows the consent as it is now.
    w.operate(reference, "consents/police", {"scope": POLICE_SCOPE})
    assert police.call("GET", f"{API}/tasks/{task_id}").body["person_name"] == name


def synthetic_name(w: World, reference: str) -> str:
    person = services.read_person(uow=w.core.uow(), reference=reference, keys=w.core.keys)
    assert person is not None
    return person.name


def test_managers_and_administrators_see_no_person_at_all(world: World, scene: dict[str, Any]) -> None:
    w = world
    persons, secrets = all_secrets(w)
    sweeps = []
    for username, role in (("leder", "manager"), ("admin", "admin")):
        sweep = Sweep(w, username)
        sweeps.append(sweep)
        for path in _gets_for(w, role):
            if path == PERSONS_COPY:
                continue  # the person's own copy (right of access): an administrator's duty, logged (test_person_copy)
            if path == f"{API}/audit/access":
                for reference in w.references()[:10]:
                    sweep.call("GET", path, params={"case": reference})
                sweep.call("GET", path, params={"user": "koordinator"})
            elif path.startswith(f"{API}/reports"):
                for params in ({}, {"scope": "all"}, {"period": "tertial", "scope": "all"}):
                    sweep.call("GET", path, params=params)
            else:
                sweep.call("GET", _fill(path))
        # what they may not call answers without content too
        for reference in w.references()[:3]:
            sweep.call("GET", f"{API}/cases/{reference}")
            sweep.call("GET", f"{API}/cases/{reference}/person")
    manager_inbox = next(s for s in sweeps[0].seen if s.label.startswith(f"GET {API}/inbox ") and s.status == 200)
    assert manager_inbox.body, "the manager should have had the daily digest of overdue steps"
    assert all(n["case_reference"] is None and n["step_code"] is None for n in manager_inbox.body)
    shown = _check(sweeps, persons, secrets)
    assert shown == []
    assert {s.status for s in sweeps[0].seen if "/cases/" in s.label} == {404}


def test_no_error_response_echoes_a_person_field(world: World, scene: dict[str, Any]) -> None:
    """Bad requests that carry person data: the problem says where and what, never the value."""
    w = world
    coordinator = Sweep(w, "koordinator")
    person = synthetic_person()
    reference = w.open_case(person)["reference"]
    version = w.version(reference)
    bad_people = [
        {**person, "birth_date": "1980-02-31"},                    # no such date
        {**person, "name": person["name"] * 20},                   # too long
        {**person, "address": person["address"] * 40},             # too long
        {**person, "nickname": person["name"]},                    # no such field
        {**person, "children_ages": [person["name"]]},             # wrong type
        {**person, "address_protection": person["address"]},      # not a code
        {"address": person["address"], "birth_date": person["birth_date"]},  # no name
    ]
    for bad in bad_people:
        coordinator.call("POST", f"{API}/cases", json={"person": bad})
        coordinator.call("PUT", f"{API}/cases/{reference}/person", json=bad, headers={"If-Match": f'"{version}"'})
    # nothing changed; a stale version; the wrong unit; a case without access
    coordinator.call("PUT", f"{API}/cases/{reference}/person", json=person, headers={"If-Match": f'"{version}"'})
    coordinator.call("PUT", f"{API}/cases/{reference}/person", json={**person, "name": "Ny Oppdiktetsen"},
                     headers={"If-Match": '"1"'})
    Sweep(w, "koordinator2").call("PUT", f"{API}/cases/{reference}/person", json=person,
                                  headers={"If-Match": f'"{version}"'})
    Sweep(w, "koordinator2").call("GET", f"{API}/cases/{reference}/person")
    # person data typed where it does not belong
    coordinator.call("POST", f"{API}/cases/{reference}/consents/police", json={"scope": [person["name"]]},
                     headers={"If-Match": f'"{version}"'})
    coordinator.call("POST", f"{API}/cases/{reference}/close", json={"outcome": person["address"][:60]},
                     headers={"If-Match": f'"{version}"'})
    coordinator.call("POST", f"{API}/cases/{reference}/coordinator", json={"coordinator": person["name"] * 5},
                     headers={"If-Match": f'"{version}"'})
    coordinator.call("POST", f"{API}/cases", json={"conditions": [person["name"]]})
    coordinator.call("POST", f"{API}/cases/{reference}/milestones/{person['name']}",
                     json={"when": "2030-01-01T00:00:00Z"}, headers={"If-Match": f'"{version}"'})
    coordinator.call("POST", f"{API}/cases/{reference}/steps/{person['birth_date']}/complete", json={},
                     headers={"If-Match": f'"{version}"'})
    coordinator.call("POST", f"{API}/cases/{reference}/steps", json={
        "title": "Møte", "owner": person["name"], "due_at": "2030-01-01T00:00:00Z", "reason": "avtalt"},
        headers={"If-Match": f'"{version}"'})
    coordinator.call("POST", f"{API}/cases/{reference}/transitions/{person['address']}", json={},
                     headers={"If-Match": f'"{version}"'})
    coordinator.call("GET", f"{API}/cases", params={"q": person["name"]})
    coordinator.call("POST", f"{API}/cases/search", json={"name": person["name"] * 20})
    coordinator.call("POST", f"{API}/cases/search", json={"name": person["name"], "address": person["address"]})
    errors = [s for s in coordinator.seen if s.status >= 400]
    assert len(errors) >= 2 * len(bad_people)
    secrets = list(_secrets(PersonRecord.model_validate(person), reference))
    # ("instance" is the URL the caller sent, by RFC 9457: the probes above that put person data into the path
    # itself get it back there, and nowhere else)
    problems = [f"{s.label} ({s.status}) echoes the {x.what}: {s.text[:300]}" for s in errors
                for x in leaks(json.dumps({k: v for k, v in s.body.items() if k != "instance"}, ensure_ascii=False),
                               secrets)]
    assert not problems, "\n".join(problems)
    assert all(s.body.get("type") and s.body.get("status") == s.status for s in errors)  # problem+json, all
