"""Who a case names must be able to carry the work: its coordinator is a coordinator of its unit, and an ad-hoc step
belongs to a crisis-centre role (an agency gets work only through a consented handover task). Issue 12, finding 4:
before, `POST .../coordinator {"coordinator": "politi"}` and `POST .../steps {"owner": "police"}` answered 200 and the
police inbox then got escalations about a case it had no task or consent for."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from pathway.scheduler import run_scan
from pathway.store.tables import case_t, event_t, notification_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, signed_in, synthetic_person  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]
PROBLEM = "application/problem+json"


def _post(w: World, reference: str, path: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    r = w.client.post(f"{API}/cases/{reference}/{path}", json=body,
                      headers={**w.auth("koordinator"), "If-Match": f'"{w.version(reference)}"'})
    return r.status_code, r.json()


@pytest.mark.parametrize("name", ["politi", "nav", "leder", "admin", "koordinator2", "ingen-slik-bruker"])
def test_only_a_coordinator_of_the_cases_unit_can_be_made_its_coordinator(world: World, name: str) -> None:
    w = world
    reference = w.open_case(synthetic_person())["reference"]
    before = w.version(reference)
    status, problem = _post(w, reference, "coordinator", {"coordinator": name})
    assert status == 422, problem
    assert any(e.get("field") == "coordinator" or "coordinator" in str(e.get("loc", ""))
               for e in problem.get("errors", [])) or "coordinator" in str(problem["detail"]), problem
    assert name not in str(problem)  # a name typed there is never repeated (it may be the person's)
    assert w.version(reference) == before  # nothing changed, no event
    status, body = _post(w, reference, "coordinator", {"coordinator": "koordinator"})
    assert status == 200 and body["coordinator"] == "koordinator"


@pytest.mark.parametrize("owner", ["police", "nav", "child_welfare", "health"])
def test_an_adhoc_step_belongs_to_a_crisis_centre_role_never_to_an_agency(world: World, owner: str) -> None:
    w = world
    reference = w.open_case(synthetic_person())["reference"]
    before = w.version(reference)
    due = (datetime.now(timezone.utc) + timedelta(days=2)).isoformat()
    status, problem = _post(w, reference, "steps", {"title": "Møte", "owner": owner, "due_at": due, "reason": "avtalt"})
    assert status == 422 and "owner" in str(problem), problem
    assert w.version(reference) == before
    status, body = _post(w, reference, "steps", {"title": "Møte", "owner": "crisis_centre", "due_at": due,
                                                 "reason": "avtalt"})
    assert status == 200 and any(s["adhoc"] and s["owner"] == "crisis_centre" for s in body["steps"])  # type: ignore[union-attr]


def test_an_overdue_adhoc_step_escalates_to_the_unit_never_to_an_agency(world: World) -> None:
    """The whole path of the finding: the step cannot be given to the police, so the police inbox hears nothing."""
    w = world
    reference = w.open_case(synthetic_person())["reference"]
    due = datetime.now(timezone.utc) + timedelta(hours=1)
    assert _post(w, reference, "steps", {"title": "Møte", "owner": "police", "due_at": due.isoformat(),
                                         "reason": "avtalt"})[0] == 422
    assert _post(w, reference, "coordinator", {"coordinator": "politi"})[0] == 422
    assert _post(w, reference, "steps", {"title": "Møte", "owner": "coordinator", "due_at": due.isoformat(),
                                         "reason": "avtalt"})[0] == 200
    run_scan(w.core, now=due + timedelta(days=30))
    with w.core.engine.connect() as conn:
        told = set(conn.execute(sa.select(notification_t.c.username).where(
            notification_t.c.case_reference == reference)).scalars())
        channels = set(conn.execute(sa.select(event_t.c.channel).join(case_t, case_t.c.id == event_t.c.case_id)
                                    .where(case_t.c.reference == reference)).scalars())
    assert told and not told & {"politi", "nav"}, told
    assert channels == {"api"}  # every change of this case came through the API, and its events say so


def test_each_event_records_the_channel_it_came_through(world: World) -> None:
    """The audit trail says where each change came from: the API, the pages (the CLI's ``cli`` is tested with it)."""
    w = world
    reference = w.open_case(synthetic_person())["reference"]  # the API
    client = signed_in(TestClient(w.app), "koordinator")
    page = client.get(f"/cases/{reference}").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    r = client.post(f"/cases/{reference}/do/pause", data={"csrf": csrf, "version": str(w.version(reference)),
                                                          "reason": "på sykehus"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    timeline = w.client.get(f"{API}/cases/{reference}", headers=w.auth("koordinator")).json()["timeline"]
    assert [(e["operation"], e["channel"]) for e in timeline] == [("open", "api"), ("person_updated", "api"),
                                                                 ("pause", "web")]
