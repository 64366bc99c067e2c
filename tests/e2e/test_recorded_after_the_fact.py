"""Recording after the fact over HTTP, on SQLite and PostgreSQL: the API's ``effective_at``, the case page's
"Utført" / "Fra" fields (Oslo local time), and the timeline that shows both times where they differ.

Times are relative to the moment the test runs (the server records changes at its own now); every assertion
compares times the test gave with times the server returns, so they hold on any date."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from api.web.render import OSLO
from tests.e2e.api_support import API, World, signed_in, synthetic_person

pytest_plugins = ["tests.e2e.api_support"]

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def opened_hours_ago(world: World, hours: float) -> str:
    first_contact = (datetime.now(timezone.utc) - timedelta(hours=hours)).replace(microsecond=0)
    r = world.client.post(f"{API}/cases", headers=world.auth("koordinator"), json={
        "first_contact_at": first_contact.isoformat(), "reason": "registrert etter møtet",
        "person": synthetic_person()})
    assert r.status_code == 201, r.text
    return r.json()["reference"]  # type: ignore[no-any-return]


def ago(hours: float) -> datetime:
    return (datetime.now(timezone.utc) - timedelta(hours=hours)).replace(second=0, microsecond=0)


def test_the_api_records_a_checkpoint_done_earlier_and_its_timeline_keeps_both_times(world: World) -> None:
    reference = opened_hours_ago(world, 3)
    done = ago(2)
    detail = world.operate(reference, "steps/K1/complete", {"effective_at": done.isoformat()})
    k1 = next(s for s in detail["steps"] if s["code"] == "K1")
    assert datetime.fromisoformat(k1["ended_at"]) == done
    event = detail["timeline"][-1]
    assert event["operation"] == "complete"
    assert datetime.fromisoformat(event["effective_at"]) == done
    assert datetime.fromisoformat(event["at"]) > done, "recorded now, done two hours ago"
    assert detail["timeline"][0]["effective_at"] is None, "an event recorded as it happened has one time"


def test_the_api_refuses_an_effective_time_in_the_future_or_before_the_previous_change(world: World) -> None:
    reference = opened_hours_ago(world, 3)
    world.operate(reference, "steps/K1/complete", {"effective_at": ago(1).isoformat()})
    for when in (datetime.now(timezone.utc) + timedelta(hours=1), ago(2)):
        problem = world.operate(reference, "pause", {"reason": "på sykehus", "effective_at": when.isoformat()},
                                expect=422)
        assert problem["errors"][0]["loc"] == ["body", "effective_at"], problem
    assert world.client.get(f"{API}/cases/{reference}", headers=world.auth("koordinator")).json()["paused_since"] \
        is None, "refused: nothing changed"


def test_the_body_models_offer_effective_at_on_exactly_the_operations_that_can_be_recorded_after_the_fact(
    world: World,
) -> None:
    schemas = world.client.get("/openapi.json").json()["components"]["schemas"]
    offered = {name for name, schema in schemas.items()
               if name.endswith("Body") and "effective_at" in schema.get("properties", {})}
    assert offered == {"CompleteStepBody", "PauseBody", "ResumeBody", "RecordConsentBody",
                       "AcceptBody", "DeclineBody", "CompleteBody"}, "the partner's replies too"


def handover_created(world: World) -> tuple[str, str, datetime]:
    """A case with a police handover task just requested: its reference, the task's id and when it was created
    (the case's previous change, so the earliest time a reply can be recorded for)."""
    reference, task_id = world.handover_case("police")
    case = world.client.get(f"{API}/cases/{reference}", headers=world.auth("koordinator")).json()
    created = case["timeline"][-1]
    assert created["operation"] == "create_handover"
    return reference, str(task_id), datetime.fromisoformat(created["at"])


def test_a_partner_records_its_replies_after_the_fact_and_the_events_keep_both_times(world: World) -> None:
    reference, task_id, created = handover_created(world)
    police = world.auth("politi")
    r = world.client.post(f"{API}/tasks/{task_id}/accept", json={"effective_at": created.isoformat()}, headers=police)
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    r = world.client.post(f"{API}/tasks/{task_id}/complete",
                          json={"note": "kontakt opprettet", "effective_at": created.isoformat()}, headers=police)
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text
    case = world.client.get(f"{API}/cases/{reference}", headers=world.auth("koordinator")).json()
    replies = [e for e in case["timeline"] if e["operation"] == "update_handover"]
    assert [(e["payload"]["status"], datetime.fromisoformat(e["effective_at"])) for e in replies] == [
        ("accepted", created), ("completed", created)]
    assert all(datetime.fromisoformat(e["at"]) > created for e in replies), "recorded later than they took effect"
    k6 = next(s for s in case["steps"] if s["code"] == "K6")
    assert k6["state"] == "done" and datetime.fromisoformat(k6["ended_at"]) == created


def test_a_partner_reply_without_an_effective_time_records_none(world: World) -> None:
    reference, task_id, _ = handover_created(world)
    r = world.client.post(f"{API}/tasks/{task_id}/accept", headers=world.auth("politi"))
    assert r.status_code == 200, r.text
    case = world.client.get(f"{API}/cases/{reference}", headers=world.auth("koordinator")).json()
    assert case["timeline"][-1]["operation"] == "update_handover" and case["timeline"][-1]["effective_at"] is None


@pytest.mark.parametrize("reply, body", [("accept", {}), ("decline", {"reason": "ikke vår kommune"}),
                                         ("complete", {"note": "kontakt opprettet"})])
def test_a_partner_reply_in_the_future_or_before_the_task_was_created_is_refused_naming_the_field(
    world: World, reply: str, body: dict[str, str]
) -> None:
    reference, task_id, created = handover_created(world)
    police = world.auth("politi")
    for when in (datetime.now(timezone.utc) + timedelta(hours=1), created - timedelta(minutes=1)):
        r = world.client.post(f"{API}/tasks/{task_id}/{reply}", json={**body, "effective_at": when.isoformat()},
                              headers=police)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["loc"] == ["body", "effective_at"], r.text
    task = world.client.get(f"{API}/tasks/{task_id}", headers=police).json()
    assert task["status"] == "requested", "refused: nothing changed"


def page_client(world: World) -> TestClient:
    return signed_in(TestClient(world.app, raise_server_exceptions=True), "koordinator")


def post(client: TestClient, reference: str, action: str, data: dict[str, str], version: int) -> object:
    csrf = CSRF.search(client.get(f"/cases/{reference}").text).group(1)  # type: ignore[union-attr]
    return client.post(f"/cases/{reference}/do/{action}", data={"csrf": csrf, "version": str(version), **data},
                       follow_redirects=False)


def local(moment: datetime) -> str:
    """As a datetime-local input sends it: Oslo wall-clock time, no zone."""
    return moment.astimezone(OSLO).strftime("%Y-%m-%dT%H:%M")


def typed_ago(hours: float) -> datetime:
    """A time some hours back that Oslo wall-clock time names once (not in the hour the clocks go back): what
    someone types into the page means that moment on any date."""
    moment = ago(hours)
    while datetime.fromisoformat(local(moment)).replace(tzinfo=OSLO) != moment:
        moment -= timedelta(hours=1)
    return moment


def test_the_case_page_records_a_pause_from_earlier_in_oslo_time_and_shows_both_times(world: World) -> None:
    client = page_client(world)
    reference = opened_hours_ago(world, 5)
    page = client.get(f"/cases/{reference}").text
    assert 'name="effective_at" type="datetime-local"' in page
    assert 'id="pause-at"' in page and 'id="consent-at"' in page

    since = typed_ago(2)
    r = post(client, reference, "pause", {"reason": "på sykehus", "effective_at": local(since)},
             world.version(reference))
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    case = world.client.get(f"{API}/cases/{reference}", headers=world.auth("koordinator")).json()
    assert datetime.fromisoformat(case["paused_since"]) == since, "the local time typed, read in Oslo"

    page = client.get(f"/cases/{reference}").text
    timeline = page[page.index('id="timeline-h"'):]
    row = next(line for line in timeline.splitlines() if since.astimezone(OSLO).isoformat(timespec="minutes") in line)
    assert "utført" in row and "registrert" in row, row
    assert 'id="resume-at"' in page, "paused: the resume form offers its own time"


def test_the_case_page_refuses_a_completion_in_the_future_and_says_which_field(world: World) -> None:
    client = page_client(world)
    reference = opened_hours_ago(world, 3)
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    r = post(client, reference, "complete", {"target": "K1", "effective_at": local(later)}, world.version(reference))
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert "effective_at" in r.text  # type: ignore[attr-defined]
    k1 = next(s for s in world.client.get(f"{API}/cases/{reference}", headers=world.auth("koordinator")).json()
              ["steps"] if s["code"] == "K1")
    assert k1["state"] == "active"
