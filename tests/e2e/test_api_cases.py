"""The coordinator's work through HTTP, and the partner's side of a handover, end to end on the seeded world."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from fhir.resources.R4B.task import Task

from pathway import accounts
from pathway.scheduler import run_scan
from pathway.store.tables import access_t, idempotency_t, user_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, UNIT, World, synthetic_person  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]
INBOX_UNIT = "enhet-innboks"  # a unit of the inbox test alone, so no other test's scan or reads change its counts
EXTRA_UNITS = (INBOX_UNIT,)

K = "koordinator"


def _etag(r: Any) -> int:
    return int(r.headers["etag"].strip('"'))


def _all_cases(w: World, **params: Any) -> list[dict[str, Any]]:
    r = w.client.get(f"{API}/cases", params={"limit": 200, "status": "all", **params}, headers=w.auth(K))
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None, "more than 200 cases: page instead"
    return r.json()["items"]  # type: ignore[no-any-return]


# -- opening and reading ---------------------------------------------------------------------------------------


def test_open_a_case_and_read_it(world: World) -> None:
    w = world
    person = synthetic_person(children_ages=[4, 9])
    r = w.client.post(f"{API}/cases", json={"person": person, "conditions": ["shelter_stay"]}, headers=w.auth(K))
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["unit"] == UNIT and case["phase"] == "intake" and _etag(r) == case["version"]
    assert (case["stage"], case["stage_title"]) == (case["phase"], case["phase_title"])  # the old names, kept
    assert case["conditions"] == ["children", "shelter_stay"]  # children: from the person record
    assert person["name"] not in r.text  # the case answer carries no person data; /person does
    detail = w.client.get(f"{API}/cases/{case['reference']}", headers=w.auth(K))
    assert detail.status_code == 200 and _etag(detail) == case["version"]
    body = detail.json()
    assert {s["code"] for s in body["steps"]} >= {"K0", "K1", "K2", "K5"}
    assert [e["operation"] for e in body["timeline"]][0] == "open"
    assert body["consents"] == [] and body["emergency_access"] == []
    w.operate(case["reference"], "consents/nav", {"scope": ["name", "contact", "finances"]})
    body = w.client.get(f"{API}/cases/{case['reference']}", headers=w.auth(K)).json()
    assert [(c["agency"], c["scope"], c["recorded_by"]) for c in body["consents"]] == \
        [("nav", ["contact", "finances", "name"], K)]
    assert body["timeline"][-1]["operation"] == "record_consent"
    person_read = w.client.get(f"{API}/cases/{case['reference']}/person", headers=w.auth(K))
    assert person_read.status_code == 200 and person_read.json()["name"] == person["name"]
    assert w.client.get(f"{API}/cases/BGO-1999-9999", headers=w.auth(K)).status_code == 404


def test_search_by_name_finds_only_my_units_cases(world: World) -> None:
    w = world
    person = synthetic_person()
    ref = w.open_case(person)["reference"]
    r = w.client.post(f"{API}/cases/search", json={"name": person["name"]}, headers=w.auth(K))
    assert r.status_code == 200 and r.json() == [ref]
    other = w.client.post(f"{API}/cases/search", json={"name": person["name"]}, headers=w.auth("koordinator2"))
    assert other.status_code == 200 and other.json() == []  # another unit learns nothing, not even existence
    assert w.client.post(f"{API}/cases/search", json={"name": "Ingen Slik Person"}, headers=w.auth(K)).json() == []
    assert w.client.post(f"{API}/cases/search", json={"name": person["name"]},
                         headers=w.auth("politi")).status_code == 404


def test_list_filters_agree_with_the_flags_they_filter_on(world: World) -> None:
    w = world
    everything = _all_cases(w)
    assert len(everything) >= 5 and all(c["unit"] == UNIT for c in everything)
    assert {c["reference"] for c in everything} == set(w.references(unit=UNIT))
    for flag in ("overdue", "due_soon"):
        yes = _all_cases(w, **{flag: True})
        no = _all_cases(w, **{flag: False})
        assert all(c[flag] for c in yes), flag
        assert not any(c[flag] for c in no), flag
        assert sorted(c["reference"] for c in yes + no) == sorted(c["reference"] for c in everything), \
            f"{flag}=true and {flag}=false together should be every case"
    assert any(c["overdue"] for c in everything), "the seeded data should have an overdue case"
    for phase in {c["phase"] for c in everything}:
        assert {c["reference"] for c in _all_cases(w, phase=phase)} == \
            {c["reference"] for c in everything if c["phase"] == phase}
        # ``stage``, the old name of the filter and the field, still works for clients written against it
        assert [c["reference"] for c in _all_cases(w, stage=phase)] == [c["reference"] for c in _all_cases(w, phase=phase)]
    assert all(c["stage"] == c["phase"] for c in everything)
    open_only = w.client.get(f"{API}/cases", params={"limit": 200}, headers=w.auth(K)).json()["items"]
    assert {c["reference"] for c in open_only} == {c["reference"] for c in everything if c["closed_at"] is None}
    one = everything[0]["reference"]
    assert [c["reference"] for c in _all_cases(w, q=one.lower())] == [one]
    prefix = one[:-1]
    assert {c["reference"] for c in _all_cases(w, q=prefix)} == \
        {c["reference"] for c in everything if c["reference"].startswith(prefix)}
    assert _all_cases(w, q="%") == []  # a LIKE wildcard is a character, not a pattern
    bad = w.client.get(f"{API}/cases", params={"cursor": "not-a-cursor"}, headers=w.auth(K))
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("sort", ["next_due", "opened_at", "reference"])
@pytest.mark.parametrize("status", ["open", "all"])
def test_cursor_pagination_visits_every_case_exactly_once(world: World, sort: str, status: str) -> None:
    w = world
    expected = w.client.get(f"{API}/cases", params={"limit": 200, "status": status, "sort": sort},
                            headers=w.auth(K)).json()["items"]
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        params: dict[str, Any] = {"limit": 3, "status": status, "sort": sort}
        if cursor:
            params["cursor"] = cursor
        r = w.client.get(f"{API}/cases", params=params, headers=w.auth(K))
        assert r.status_code == 200, r.text
        seen += [c["reference"] for c in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), f"a case came twice: {seen}"
    assert seen == [c["reference"] for c in expected], "pages should follow the unpaged order"


# -- writing: versions, concurrency, idempotency -----------------------------------------------------------------


def test_complete_with_if_match_stale_and_missing_versions(world: World) -> None:
    w = world
    ref = w.open_case(synthetic_person())["reference"]
    v = w.version(ref)
    h = w.auth(K)
    r = w.client.post(f"{API}/cases/{ref}/steps/K1/complete", json={}, headers={**h, "If-Match": f'"{v}"'})
    assert r.status_code == 200, r.text
    assert _etag(r) == v + 1 == r.json()["version"]
    assert next(s for s in r.json()["steps"] if s["code"] == "K1")["state"] == "done"
    stale = w.client.post(f"{API}/cases/{ref}/steps/K2/complete", json={}, headers={**h, "If-Match": f'"{v}"'})
    assert stale.status_code == 409 and stale.headers["content-type"] == "application/problem+json"
    assert stale.json()["type"] == "/problems/stale-version"
    assert (stale.json()["expected_version"], stale.json()["current_version"]) == (v, v + 1)
    missing = w.client.post(f"{API}/cases/{ref}/steps/K2/complete", json={}, headers=h)
    assert missing.status_code == 428 and missing.headers["content-type"] == "application/problem+json"
    garbled = w.client.post(f"{API}/cases/{ref}/steps/K2/complete", json={}, headers={**h, "If-Match": "seven"})
    assert garbled.status_code == 422
    weak = w.client.post(f"{API}/cases/{ref}/steps/K2/complete", json={}, headers={**h, "If-Match": f'W/"{v + 1}"'})
    assert weak.status_code == 200 and _etag(weak) == v + 2
    in_body = w.client.post(f"{API}/cases/{ref}/pause", json={"reason": "på sykehus", "version": v + 2}, headers=h)
    assert in_body.status_code == 200 and _etag(in_body) == v + 3
    assert w.version(ref) == v + 3


def test_two_concurrent_completes_with_the_same_version_one_wins(world: World) -> None:
    w = world
    ref = w.open_case(synthetic_person())["reference"]
    v = w.version(ref)
    barrier = threading.Barrier(2)
    answers: list[int] = []
    lock = threading.Lock()

    def complete(code: str) -> None:
        client = type(w.client)(w.app, raise_server_exceptions=False)
        headers = {**w.auth(K), "If-Match": f'"{v}"'}
        barrier.wait()
        r = client.post(f"{API}/cases/{ref}/steps/{code}/complete", json={}, headers=headers)
        with lock:
            answers.append(r.status_code)
            if r.status_code == 409:
                assert r.json()["type"] == "/problems/stale-version"

    threads = [threading.Thread(target=complete, args=(code,)) for code in ("K1", "K2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(answers) == [200, 409]
    assert w.version(ref) == v + 1


def test_idempotency_key_replays_the_first_answer_and_applies_once(world: World) -> None:
    w = world
    ref = w.open_case(synthetic_person())["reference"]
    v = w.version(ref)
    key = f"complete-{uuid.uuid4()}"
    h = {**w.auth(K), "If-Match": f'"{v}"', "Idempotency-Key": key}
    first = w.client.post(f"{API}/cases/{ref}/steps/K1/complete", json={"note": "kartlagt"}, headers=h)
    again = w.client.post(f"{API}/cases/{ref}/steps/K1/complete", json={"note": "kartlagt"}, headers=h)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers.get("idempotency-replayed") == "true"
    assert again.headers.get("etag") == first.headers["etag"], "a replay answers as the first did, ETag and all"
    assert w.version(ref) == v + 1
    other = w.client.post(f"{API}/cases/{ref}/steps/K1/complete", json={"note": "noe annet"}, headers=h)
    assert other.status_code == 422 and other.headers["content-type"] == "application/problem+json"
    assert w.version(ref) == v + 1
    # the same key on another route is another request too
    elsewhere = w.client.post(f"{API}/cases/{ref}/steps/K2/complete", json={"note": "kartlagt"}, headers=h)
    assert elsewhere.status_code == 422
    # opening a case: a retried POST opens one case, not two
    before = len(w.references())
    body = {"person": synthetic_person()}
    hk = {**w.auth(K), "Idempotency-Key": f"open-{uuid.uuid4()}"}
    a = w.client.post(f"{API}/cases", json=body, headers=hk)
    b = w.client.post(f"{API}/cases", json=body, headers=hk)
    assert a.status_code == b.status_code == 201 and a.json()["reference"] == b.json()["reference"]
    assert len(w.references()) == before + 1
    # keys belong to their user: another coordinator's same key is a different request
    c = w.client.post(f"{API}/cases", json=body, headers={**w.auth("koordinator2"), "Idempotency-Key": hk["Idempotency-Key"]})
    assert c.status_code == 201 and c.json()["reference"] != a.json()["reference"]


def test_a_retry_after_a_lost_answer_learns_the_change_was_made_and_nothing_is_applied_twice(world: World) -> None:
    w = world
    ref = w.open_case(synthetic_person())["reference"]
    v = w.version(ref)
    h = {**w.auth(K), "If-Match": f'"{v}"', "Idempotency-Key": f"lost-{uuid.uuid4()}"}
    stale = {**h, "If-Match": f'"{v - 1}"', "Idempotency-Key": f"refused-{uuid.uuid4()}"}
    refused = w.client.post(f"{API}/cases/{ref}/pause", json={"reason": "venter på tolk"}, headers=stale)
    assert refused.status_code == 409
    with w.core.engine.connect() as conn:  # a refused change claims no key: its retry is refused again, not replayed
        assert conn.execute(sa.select(idempotency_t.c.key).where(
            idempotency_t.c.key == stale["Idempotency-Key"])).first() is None
    first = w.client.post(f"{API}/cases/{ref}/pause", json={"reason": "venter på tolk"}, headers=h)
    assert first.status_code == 200
    # The worker dies after the change committed, before its answer was stored: the claim made with the change
    # is all there is.
    with w.core.engine.begin() as conn:
        conn.execute(sa.update(idempotency_t).where(idempotency_t.c.key == h["Idempotency-Key"]).values(body=None))
    retry = w.client.post(f"{API}/cases/{ref}/pause", json={"reason": "venter på tolk"}, headers=h)
    assert retry.status_code == 200, retry.text  # not 409 stale version: the change was made
    assert retry.headers.get("idempotency-replayed") == "true" and retry.json()["version"] == v + 1
    assert retry.json()["paused_since"] is not None and w.version(ref) == v + 1


# -- handovers -----------------------------------------------------------------------------------------------


def test_handover_without_consent_is_refused_naming_the_agency(world: World) -> None:
    w = world
    ref = w.open_case(synthetic_person())["reference"]
    v = w.version(ref)
    r = w.client.post(f"{API}/cases/{ref}/handovers", json={"code": "K6"}, headers={**w.auth(K), "If-Match": f'"{v}"'})
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"] == "/problems/consent-required" and problem["agency"] == "police"
    assert sorted(problem["missing_scope"]) == ["contact", "name", "threat_assessment"]
    assert w.version(ref) == v  # nothing happened
    # a legal basis for another agency is no way round it
    wrong = w.client.post(f"{API}/cases/{ref}/handovers", json={"code": "K6", "legal_basis": "child_welfare_duty",
                                                                "reason": "bekymring"},
                          headers={**w.auth(K), "If-Match": f'"{v}"'})
    assert wrong.status_code == 422
    # withdrawn consent stops handovers again
    w.operate(ref, "consents/police", {"scope": ["name", "contact", "threat_assessment"]})
    w.operate(ref, "consents/police", {"given": False, "reason": "trakk samtykket"})
    again = w.operate(ref, "handovers", {"code": "K6"}, expect=409)
    assert again["type"] == "/problems/consent-required"


def test_partner_accepts_then_completes_and_the_step_is_done(world: World) -> None:
    w = world
    ref, task_id = w.handover_case("police")
    police = w.auth("politi")
    listed = w.client.get(f"{API}/tasks", params={"status": "requested", "limit": 200}, headers=police).json()["items"]
    assert str(task_id) in {t["id"] for t in listed}
    accepted = w.client.post(f"{API}/tasks/{task_id}/accept", headers=police)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    twice = w.client.post(f"{API}/tasks/{task_id}/accept", headers=police)
    assert twice.status_code == 409 and twice.json()["type"] == "/problems/operation-not-allowed"
    done = w.client.post(f"{API}/tasks/{task_id}/complete", json={"note": "kontakt opprettet"}, headers=police)
    assert done.status_code == 200 and done.json()["status"] == "completed"
    case = w.client.get(f"{API}/cases/{ref}", headers=w.auth(K)).json()
    assert next(s for s in case["steps"] if s["code"] == "K6")["state"] == "done"
    assert next(t for t in case["handovers"] if t["id"] == str(task_id))["status"] == "completed"
    ops = [(e["actor"], e["operation"]) for e in case["timeline"]][-2:]
    assert ops == [("politi", "update_handover"), ("politi", "update_handover")]


def test_declining_needs_a_reason(world: World) -> None:
    w = world
    _, task_id = w.handover_case("police")
    police = w.auth("politi")
    for body in (None, {}, {"reason": ""}):
        r = w.client.post(f"{API}/tasks/{task_id}/decline", json=body, headers=police)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    r = w.client.post(f"{API}/tasks/{task_id}/decline", json={"reason": "ikke vår kommune"}, headers=police)
    assert r.status_code == 200 and r.json()["status"] == "declined"


def test_fhir_task_validates_as_fhir_r4b(world: World) -> None:
    w = world
    ref, task_id = w.handover_case("police")
    r = w.client.get(f"{API}/tasks/{task_id}/fhir", headers=w.auth("politi"))
    assert r.status_code == 200, r.text
    task = Task.model_validate(r.json())
    assert task.status == "requested" and task.intent == "order" and str(task.id) == str(task_id)
    assert ref in {i.value for i in task.identifier}
    # no address, ever; and NAV cannot fetch it
    assert w.client.get(f"{API}/tasks/{task_id}/fhir", headers=w.auth("nav")).status_code == 404
    # a task handed over on a legal basis carries its note; at high risk the police act the same day ("stat")
    ref2 = w.open_case(synthetic_person())["reference"]
    w.operate(ref2, "risk", {"level": "high"})
    detail = w.operate(ref2, "handovers", {"code": "K6", "legal_basis": "avert_crime", "reason": "akutt fare"})
    tid = next(t["id"] for t in detail["handovers"] if t["code"] == "K6")
    urgent = Task.model_validate(w.client.get(f"{API}/tasks/{tid}/fhir", headers=w.auth("politi")).json())
    assert urgent.priority == "stat" and "Avvergingsplikt" in urgent.note[0].text


# -- break-glass and the access log -------------------------------------------------------------------------


def test_break_glass_gives_another_unit_logged_access(world: World) -> None:
    w = world
    ref = w.open_case(synthetic_person())["reference"]
    other = w.auth("koordinator2")
    assert w.client.get(f"{API}/cases/{ref}", headers=other).status_code == 404
    short = w.client.post(f"{API}/cases/{ref}/break-glass", json={"reason": "akutt"}, headers=other)
    assert short.status_code == 422  # a reason of at least 10 characters
    reason = "akutt henvendelse på natt, koordinator utilgjengelig"
    r = w.client.post(f"{API}/cases/{ref}/break-glass", json={"reason": reason}, headers=other)
    assert r.status_code == 200 and r.json()["reference"] == ref
    assert datetime.fromisoformat(r.json()["expires_at"]) > datetime.now(timezone.utc) + timedelta(hours=11)
    detail = w.client.get(f"{API}/cases/{ref}", headers=other)
    assert detail.status_code == 200
    assert [(g["username"], g["reason"]) for g in detail.json()["emergency_access"]] == [("koordinator2", reason)]
    # own-unit coordinator sees the emergency access too
    own = w.client.get(f"{API}/cases/{ref}", headers=w.auth(K)).json()
    assert [g["username"] for g in own["emergency_access"]] == ["koordinator2"]
    log = w.client.get(f"{API}/audit/access", params={"case": ref}, headers=w.auth("admin")).json()
    mine = [e for e in log if e["username"] == "koordinator2"]
    assert {(e["action"], e["break_glass"]) for e in mine} >= {("case.break_glass", True), ("case.read", True)}
    assert next(e for e in mine if e["action"] == "case.break_glass")["reason"] == reason
    assert all(not e["break_glass"] for e in log if e["username"] == K)


def test_the_access_log_shows_reads_and_writes_and_logs_its_own_reading(world: World) -> None:
    w = world
    ref = w.open_case(synthetic_person())["reference"]
    w.client.get(f"{API}/cases/{ref}", headers=w.auth(K))
    w.client.get(f"{API}/cases/{ref}/person", headers=w.auth(K))
    w.operate(ref, "steps/K1/complete")
    stale = w.client.post(f"{API}/cases/{ref}/steps/K2/complete", json={}, headers={**w.auth(K), "If-Match": '"1"'})
    assert stale.status_code == 409
    admin = w.auth("admin")
    log = w.client.get(f"{API}/audit/access", params={"case": ref}, headers=admin)
    assert log.status_code == 200
    actions = {(e["username"], e["action"], e["status"]) for e in log.json()}
    assert {(K, "case.open", 200), (K, "case.read", 200), (K, "person.read", 200), (K, "case.complete", 200),
            (K, "case.complete", 409)} <= actions
    assert not any(e["action"] == "audit.read" for e in log.json())
    again = w.client.get(f"{API}/audit/access", params={"case": ref}, headers=admin).json()
    assert [e["action"] for e in again if e["username"] == "admin"] == ["audit.read"]
    by_user = w.client.get(f"{API}/audit/access", params={"user": "admin", "limit": 5}, headers=admin).json()
    assert by_user[0]["action"] == "audit.read"
    assert w.client.get(f"{API}/audit/access", headers=admin).status_code == 422
    assert w.client.get(f"{API}/audit/access", params={"case": ref}, headers=w.auth(K)).status_code == 403


def _logged(w: World, **where: Any) -> set[tuple[Any, ...]]:
    query = sa.select(access_t.c.username, access_t.c.action, access_t.c.case_reference, access_t.c.status)
    for column, value in where.items():
        query = query.where(access_t.c[column] == value)
    with w.core.engine.connect() as conn:
        return {tuple(r) for r in conn.execute(query)}


def test_refused_reads_and_writes_are_in_the_access_log_with_their_outcome(world: World) -> None:
    w = world
    ref, task_id = w.handover_case("police")
    other = w.auth("koordinator2")  # bergen-nord
    assert w.client.get(f"{API}/cases/{ref}", headers=other).status_code == 404
    assert w.client.get(f"{API}/cases/{ref}/person", headers=other).status_code == 404
    done = w.client.post(f"{API}/cases/{ref}/steps/K1/complete", json={}, headers={**other, "If-Match": '"1"'})
    assert done.status_code == 404
    assert {("koordinator2", "case.read", ref, 404), ("koordinator2", "person.read", ref, 404),
            ("koordinator2", "case.complete", ref, 404)} <= _logged(w, username="koordinator2")
    probe = w.client.get(f"{API}/cases/{'X' * 200}", headers=other)  # no such case: refused, logged without it
    assert probe.status_code == 404 and ("koordinator2", "case.read", None, 404) in _logged(w, username="koordinator2")
    nav = w.auth("nav")
    assert w.client.get(f"{API}/tasks/{task_id}", headers=nav).status_code == 404
    assert w.client.post(f"{API}/tasks/{task_id}/accept", headers=nav).status_code == 404
    with w.core.engine.connect() as conn:
        refused = {tuple(r) for r in conn.execute(sa.select(access_t.c.action, access_t.c.task_id, access_t.c.status)
                                                  .where(access_t.c.username == "nav"))}
    assert {("task.read", task_id, 404), ("task.accepted", task_id, 404)} <= refused


def test_a_partners_task_list_logs_one_row_per_case_it_shows(world: World) -> None:
    w = world
    refs = [w.handover_case("police")[0] for _ in range(3)]
    shown = w.client.get(f"{API}/tasks", params={"limit": 200}, headers=w.auth("politi")).json()["items"]
    assert {t["case_reference"] for t in shown} >= set(refs)
    logged = {r for _, action, r, status in _logged(w, username="politi") if action == "task.list" and status == 200}
    assert logged == {t["case_reference"] for t in shown}


def test_a_replayed_answer_is_logged_and_refused_to_someone_who_may_no_longer_see_the_case(world: World) -> None:
    w = world
    ref = w.open_case(synthetic_person())["reference"]
    h = {**w.auth(K), "If-Match": f'"{w.version(ref)}"', "Idempotency-Key": f"replay-{uuid.uuid4()}"}
    assert w.client.post(f"{API}/cases/{ref}/steps/K1/complete", json={}, headers=h).status_code == 200
    assert w.client.post(f"{API}/cases/{ref}/steps/K1/complete", json={}, headers=h).status_code == 200
    assert (K, "case.complete.replay", ref, 200) in _logged(w, case_reference=ref)
    with w.core.engine.begin() as conn:  # the coordinator moves to another unit
        conn.execute(sa.update(user_t).where(user_t.c.username == K).values(unit="bergen-nord"))
    try:
        again = w.client.post(f"{API}/cases/{ref}/steps/K1/complete", json={}, headers=h)
        assert again.status_code == 404 and "Tora" not in again.text
        assert (K, "case.complete.replay", ref, 404) in _logged(w, case_reference=ref)
    finally:
        with w.core.engine.begin() as conn:
            conn.execute(sa.update(user_t).where(user_t.c.username == K).values(unit=UNIT))


# -- accounts ---------------------------------------------------------------------------------------------------


def test_login_locks_after_five_wrong_passwords(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    slept: list[float] = []
    monkeypatch.setattr(accounts, "time", SimpleNamespace(sleep=slept.append))  # the throttle, without the wait
    name = f"laas{uuid.uuid4().hex[:6]}"
    created = w.client.post(f"{API}/users", json={"username": name, "role": "coordinator", "unit": "voss",
                                                   "password": "riktig-passord"}, headers=w.auth("admin"))
    assert created.status_code == 201, created.text
    assert w.client.post(f"{API}/auth/token", data={"username": name, "password": "riktig-passord"}).status_code == 200
    for _ in range(5):
        r = w.client.post(f"{API}/auth/token", data={"username": name, "password": "feil-passord"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    locked = w.client.post(f"{API}/auth/token", data={"username": name, "password": "riktig-passord"})
    assert locked.status_code == 401
    assert len(slept) == 6 and slept == sorted(slept) and slept[-1] > slept[0]  # each failure in a row costs more
    assert locked.json()["detail"] == w.client.post(
        f"{API}/auth/token", data={"username": "ingen-slik", "password": "x"}).json()["detail"]  # says not which
    # the lock lasts a while, not for ever (the module takes a clock)
    later = datetime.now(timezone.utc) + accounts.LOCK_FOR + timedelta(minutes=1)
    token, user, _ = accounts.login(w.core.engine, name, "riktig-passord", now=later, slow=False)
    assert user.username == name and token


def test_personal_token_create_use_revoke(world: World) -> None:
    w = world
    h = w.auth("politi")
    r = w.client.post(f"{API}/auth/tokens", json={"name": "fagsystem", "days": 30}, headers=h)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["token"].startswith("fp_")
    bearer = {"Authorization": f"Bearer {made['token']}"}
    me = w.client.get(f"{API}/me", headers=bearer)
    assert me.status_code == 200 and me.json()["username"] == "politi" and me.json()["agency"] == "police"
    assert w.client.get(f"{API}/tasks", headers=bearer).status_code == 200
    listed = w.client.get(f"{API}/auth/tokens", headers=h).json()
    mine = next(t for t in listed if t["id"] == made["id"])
    assert mine["token"] is None and mine["revoked_at"] is None  # the secret is shown once
    # nobody else can revoke it
    assert w.client.delete(f"{API}/auth/tokens/{made['id']}", headers=w.auth("nav")).status_code == 404
    assert w.client.delete(f"{API}/auth/tokens/{made['id']}", headers=h).status_code == 204
    assert w.client.get(f"{API}/me", headers=bearer).status_code == 401
    assert w.client.delete(f"{API}/auth/tokens/{made['id']}", headers=h).status_code == 404
    assert next(t for t in w.client.get(f"{API}/auth/tokens", headers=h).json()
                if t["id"] == made["id"])["revoked_at"] is not None


def test_inbox_after_a_scan_count_read_unread(world: World) -> None:
    w = world
    # a user of its own, so that no other test's scan or reads change the counts
    name = f"innboks{uuid.uuid4().hex[:6]}"
    unit = INBOX_UNIT
    assert w.client.post(f"{API}/users", json={"username": name, "role": "coordinator", "unit": unit,
                                               "password": "et-langt-passord"},
                         headers=w.auth("admin")).status_code == 201
    token = w.client.post(f"{API}/auth/token", data={"username": name, "password": "et-langt-passord"}).json()
    h = {"Authorization": f"Bearer {token['access_token']}"}
    for _ in range(2):
        r = w.client.post(f"{API}/cases", json={"person": synthetic_person()}, headers=h)
        assert r.status_code == 201
    assert w.client.get(f"{API}/inbox/count", headers=h).json() == {"unread": 0}
    later = datetime.now(timezone.utc) + timedelta(days=3)
    run_scan(w.core, now=later)
    count = w.client.get(f"{API}/inbox/count", headers=h).json()["unread"]
    assert count >= 2
    run_scan(w.core, now=later)  # a second scan at the same time raises nothing twice
    assert w.client.get(f"{API}/inbox/count", headers=h).json()["unread"] == count
    items = w.client.get(f"{API}/inbox", params={"limit": 500}, headers=h).json()
    assert len(items) == count and not any(i["read"] for i in items)
    assert all(i["unit"] == unit for i in items)
    assert all(i["link"].endswith(f"/cases/{i['case_reference']}") for i in items if i["case_reference"])
    ids = [i["id"] for i in items[:2]]
    # someone else cannot mark mine
    assert w.client.post(f"{API}/inbox/read", json={"ids": ids}, headers=w.auth(K)).status_code == 200
    assert w.client.get(f"{API}/inbox/count", headers=h).json()["unread"] == count
    r = w.client.post(f"{API}/inbox/read", json={"ids": ids}, headers=h)
    assert r.status_code == 200 and r.json() == {"unread": count - 2}
    unread = w.client.get(f"{API}/inbox", params={"unread": True, "limit": 500}, headers=h).json()
    assert {i["id"] for i in unread} == {i["id"] for i in items} - set(ids)
    r = w.client.post(f"{API}/inbox/unread", json={"ids": ids[:1]}, headers=h)
    assert r.json() == {"unread": count - 1}
    assert w.client.post(f"{API}/inbox/read", json={"ids": []}, headers=h).status_code == 422
