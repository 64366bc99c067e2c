"""A partner sees that a consent changed after the handover, not only that its task shows less: the API's task (list,
one, FHIR) and the /tasks page name what the task asked for and no longer shares, and since when; the change itself
is an event on the case. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pathway import services

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, signed_in  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

# Nothing here depends on the date: the times compared are the ones the case records.
pytestmark = pytest.mark.any_date

POLICE_SCOPE = ["name", "contact", "threat_assessment"]


def _name(w: World, reference: str) -> str:
    person = services.read_person(uow=w.core.uow(), reference=reference, keys=w.core.keys)
    assert person is not None
    return person.name


def _task(w: World, task_id: Any, path: str = "") -> Any:
    r = w.client.get(f"{API}/tasks/{task_id}{path}", headers=w.auth("politi"))
    assert r.status_code == 200, r.text
    return r.json()


def test_an_unchanged_consent_withholds_nothing(world: World) -> None:
    w = world
    reference, task_id = w.handover_case("police", scope=POLICE_SCOPE)
    task = _task(w, task_id)
    assert task["withheld"] == [] and task["withheld_names"] == [] and task["consent_changed_at"] is None
    assert task["person_name"] == _name(w, reference)
    assert not any("Samtykket er endret" in n["text"] for n in _task(w, task_id, "/fhir").get("note", []))


def test_narrowing_the_police_consent_shows_politi_the_withheld_scope_and_no_name(world: World) -> None:
    w = world
    reference, task_id = w.handover_case("police", scope=POLICE_SCOPE)
    name = _name(w, reference)
    detail = w.operate(reference, "consents/police", {"scope": ["contact", "threat_assessment"],
                                                      "reason": "personen vil ikke at navnet deles"})
    # The change is an event on the case, with who, when and why.
    event = detail["timeline"][-1]
    assert event["operation"] == "record_consent" and event["reason"] == "personen vil ikke at navnet deles"
    assert event["payload"] == {"agency": "police", "scope": ["contact", "threat_assessment"], "given": True}
    changed = datetime.fromisoformat(event["at"])

    one = _task(w, task_id)
    assert one["status"] == "requested" and one["person_name"] is None
    assert one["asked"] == ["contact", "threat_assessment"]
    assert one["withheld"] == ["name"] and one["withheld_names"] == ["Navn"]  # politi reads bokmål
    assert datetime.fromisoformat(one["consent_changed_at"]) == changed
    listed = [t for t in w.client.get(f"{API}/tasks", params={"limit": 200}, headers=w.auth("politi")).json()["items"]
          if t["id"] == str(task_id)]
    assert listed == [one]

    fhir = _task(w, task_id, "/fhir")
    assert name not in str(fhir)
    assert "name" not in [i["type"]["text"] for i in fhir.get("input", [])]
    (note,) = [n for n in fhir["note"] if n["text"].startswith("Samtykket er endret")]
    assert note["text"] == "Samtykket er endret: Navn deles ikke lenger (consent-scope withheld: name)."
    assert datetime.fromisoformat(note["time"]) == changed

    page = signed_in(TestClient(w.app), "politi").get("/tasks")
    assert page.status_code == 200 and name not in page.text
    article = page.text[page.text.index(f'id="task-{task_id}"'):]
    article = article[:article.index("</article>")]
    assert "Samtykket er endret: Navn deles ikke lenger" in article

    # Widened again: nothing is withheld, and the name is back while the task is open.
    w.operate(reference, "consents/police", {"scope": POLICE_SCOPE})
    again = _task(w, task_id)
    assert again["withheld"] == [] and again["consent_changed_at"] is None and again["person_name"] == name


def test_a_withdrawn_consent_cancels_the_task_and_says_all_its_scope_is_withheld(world: World) -> None:
    w = world
    reference, task_id = w.handover_case("police", scope=POLICE_SCOPE)
    detail = w.operate(reference, "consents/police", {"scope": [], "given": False, "reason": "trakk samtykket"})
    changed = datetime.fromisoformat(detail["timeline"][-1]["at"])
    task = _task(w, task_id)
    assert task["status"] == "cancelled" and task["person_name"] is None and task["asked"] == []
    assert task["withheld"] == POLICE_SCOPE
    assert task["withheld_names"] == ["Navn", "Trygg kontaktkanal", "Trusselvurdering"]
    assert datetime.fromisoformat(task["consent_changed_at"]) == changed


def test_a_task_on_a_legal_basis_withholds_nothing_whatever_the_consent(world: World) -> None:
    w = world
    reference = w.open_case()["reference"]
    detail = w.operate(reference, "handovers", {"code": "K6", "legal_basis": "avert_crime",
                                                "reason": "fare for nye overgrep"})
    task_id = next(t["id"] for t in detail["handovers"] if t["code"] == "K6")
    w.operate(reference, "consents/police", {"scope": ["contact"]})
    task = _task(w, task_id)
    assert task["withheld"] == [] and task["consent_changed_at"] is None and task["basis"] == "avert_crime"
