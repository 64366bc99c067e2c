"""Police referrals through the HTTP API, on SQLite and PostgreSQL (issue 16, item 3): a police contact sends one (as
JSON or as a FHIR ServiceRequest), it waits in the unit's queue, its coordinators are told without a name; accepting
opens a case whose clock started when the referral was received (channel police, K15 due a working day later), and the
police see "accepted" and nothing more; declining carries its reason back; a second decision is a 409 and changes
nothing; another unit's coordinator finds nothing."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from pathway import services
from pathway.bootstrap import Forlop
from pathway.calendar import Unit, shift
from pathway.case.commands import CompleteStep
from pathway.metrics import SMALL, timeliness
from pathway.services import referrals
from pathway.store.tables import access_t, notification_t, outbox_t, referral_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

UNIT = "bergen-sentrum"  # koordinator's; koordinator2 is bergen-nord's
NAME = "Testperson Ås"
PHONE = "+47 400 00 000"
WHAT = "Slått av partner i natt, redd for å dra hjem"
CONTACT_AGREED = "https://forlop.no/fhir/StructureDefinition/contact-agreed"


def referral(**changes: Any) -> dict[str, Any]:
    return {"unit": UNIT, "name": NAME, "phone": PHONE, "what_happened": WHAT, "risk": "high", "contact_agreed": True,
            **changes}


def service_request(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest", "status": "active", "intent": "order", "priority": "urgent",
        "contained": [{"resourceType": "Patient", "id": "p1", "name": [{"text": NAME}],
                       "telecom": [{"system": "phone", "value": PHONE}]}],
        "subject": {"reference": "#p1"},
        "performer": [{"reference": f"Organization/{UNIT}"}],
        "note": [{"text": WHAT}],
        "extension": [{"url": CONTACT_AGREED, "valueBoolean": True}],
    }
    resource.update(changes)
    return resource


def send(w: World, body: dict[str, Any] | None = None, *, user: str = "politi") -> dict[str, Any]:
    r = w.client.post(f"{API}/referrals", json=body or referral(), headers=w.auth(user))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def queue(w: World, user: str = "koordinator") -> list[dict[str, Any]]:
    r = w.client.get(f"{API}/referrals", headers=w.auth(user))
    assert r.status_code == 200, r.text
    assert r.json()["sent"] == []
    return r.json()["queue"]  # type: ignore[no-any-return]


def sent(w: World) -> dict[str, dict[str, Any]]:
    r = w.client.get(f"{API}/referrals", headers=w.auth("politi"))
    assert r.status_code == 200, r.text
    assert r.json()["queue"] == []
    return {item["id"]: item for item in r.json()["sent"]}


def row(w: World, referral_id: str) -> Any:
    with w.core.engine.connect() as conn:
        return conn.execute(sa.select(referral_t).where(referral_t.c.id == uuid.UUID(referral_id))).one()


def decide(w: World, referral_id: str, what: str, body: dict[str, Any] | None = None, *, user: str = "koordinator",
           version: int | None = None) -> Any:
    headers = w.auth(user)
    if version is not None:
        headers["If-Match"] = f'"{version}"'
    return w.client.post(f"{API}/referrals/{referral_id}/{what}", json=body, headers=headers)


def test_a_referral_sent_by_api_waits_in_the_unit_s_queue_and_its_content_is_encrypted(world: World) -> None:
    w = world
    mine = send(w)
    assert mine["status"] == "received" and mine["unit"] == UNIT and set(mine) == {
        "id", "unit", "received_at", "status", "decided_at", "decline_reason"}
    waiting = {item["id"]: item for item in queue(w)}[mine["id"]]
    assert (waiting["name"], waiting["phone"], waiting["what_happened"]) == (NAME, PHONE, WHAT)
    assert (waiting["risk"], waiting["contact_agreed"], waiting["sent_by"]) == ("high", True, "politi")
    stored = row(w, mine["id"])
    for plain in (NAME, PHONE, "partner"):
        assert plain.encode() not in stored.ciphertext
    with w.core.engine.connect() as conn:
        read = conn.execute(sa.select(access_t.c.username).where(
            access_t.c.action == "referral.read", access_t.c.task_id == uuid.UUID(mine["id"]))).scalars().all()
    assert "koordinator" in read  # every read of its content is in the access log


def test_the_unit_s_coordinators_are_told_with_no_name_and_no_content(world: World) -> None:
    w = world
    mine = send(w)
    with w.core.engine.connect() as conn:
        told = conn.execute(sa.select(notification_t).where(notification_t.c.kind == "referral_received",
                                                            notification_t.c.created_at == row(w, mine["id"]).received_at
                                                            )).all()
        payloads = conn.execute(sa.select(outbox_t.c.payload).where(
            outbox_t.c.username.in_([n.username for n in told]))).scalars().all()
    assert told and {n.unit for n in told} == {UNIT} and "koordinator" in {n.username for n in told}
    assert "koordinator2" not in {n.username for n in told}
    for n in told:
        assert n.link.endswith("/referrals/queue") and n.case_reference is None
    for text in [str(tuple(n)) for n in told] + [str(p) for p in payloads]:
        for secret in (NAME, "Ås", PHONE, WHAT):
            assert secret not in text


def test_accepting_opens_a_case_whose_clock_started_when_the_referral_was_received(world: World) -> None:
    w = world
    mine = send(w)
    received = datetime.fromisoformat(row(w, mine["id"]).received_at.isoformat())
    r = decide(w, mine["id"], "accept", version=1)
    assert r.status_code == 200, r.text
    reference = r.json()["case_reference"]
    case = services.get_case(uow=w.core.uow(), reference=reference)
    assert case.opened_at == received and case.unit == UNIT
    detail = w.client.get(f"{API}/cases/{reference}", headers=w.auth("koordinator")).json()
    first = detail["timeline"][0]
    assert first["payload"]["contact_channel"] == "police"
    assert "police_referral" in first["payload"]["conditions"]
    assert NAME not in (first.get("reason") or "") and "police referral received" in first["reason"]
    assert case.risk == "high"
    k0 = next(s for s in case.steps if s.code == "K0")
    k15 = next(s for s in case.steps if s.code == "K15")
    assert k0.state == "done" and k0.ended_at == received
    assert k15.due_at == shift(received, 1, Unit.WORKING_DAYS)
    person = services.read_person(uow=w.core.uow(), reference=reference, keys=w.core.keys)
    assert person is not None and (person.name, person.safe_contact) == (NAME, PHONE)

    # The police see that it was accepted, and nothing of the case.
    seen = sent(w)[mine["id"]]
    assert seen["status"] == "accepted" and seen["decline_reason"] is None
    assert reference not in str(seen) and "case" not in str(seen)
    assert mine["id"] not in {item["id"] for item in queue(w)}  # no longer waiting


def test_a_second_decision_is_a_409_and_changes_nothing(world: World) -> None:
    w = world
    mine = send(w)
    assert decide(w, mine["id"], "accept").status_code == 200
    before = row(w, mine["id"])
    cases_before = len(w.references())
    again = decide(w, mine["id"], "accept")
    declined = decide(w, mine["id"], "decline", {"reason": "ikke vår kommune"})
    stale = decide(w, mine["id"], "decline", {"reason": "ikke vår kommune"}, version=1)
    for answer in (again, declined, stale):
        assert answer.status_code == 409, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    assert row(w, mine["id"]) == before and len(w.references()) == cases_before
    with w.core.engine.connect() as conn:  # each refusal is in the access log with its outcome
        logged = conn.execute(sa.select(access_t.c.action, access_t.c.status).where(
            access_t.c.task_id == uuid.UUID(mine["id"]), access_t.c.status == 409)).all()
    assert sorted(logged) == [("referral.accept", 409), ("referral.decline", 409), ("referral.decline", 409)]


def test_a_declined_referral_carries_its_reason_back_to_the_police(world: World) -> None:
    w = world
    mine = send(w, referral(risk="low", contact_agreed=False))
    reason = "Personen bor i Voss; henvis til krisesenteret der"
    r = decide(w, mine["id"], "decline", {"reason": reason}, version=1)
    assert r.status_code == 200, r.text
    seen = sent(w)[mine["id"]]
    assert (seen["status"], seen["decline_reason"]) == ("declined", reason)
    with w.core.engine.connect() as conn:
        told = conn.execute(sa.select(notification_t).where(notification_t.c.kind == "referral_declined",
                                                            notification_t.c.username == "politi")).all()
    assert told and all(reason not in str(tuple(n)) and NAME not in str(tuple(n)) for n in told)
    assert decide(w, mine["id"], "decline", {"reason": " "}).status_code == 422  # a reason is required (and it is
    assert row(w, mine["id"]).status == "declined"  # decided already either way)


def test_a_coordinator_of_another_unit_and_other_roles_find_nothing(world: World) -> None:
    w = world
    mine = send(w)
    assert mine["id"] not in {item["id"] for item in queue(w, "koordinator2")}
    for what, body in (("accept", None), ("decline", {"reason": "ikke vår"})):
        r = decide(w, mine["id"], what, body, user="koordinator2")
        assert r.status_code == 404 and r.json()["detail"] == "fant ikke"
    for user in ("nav", "leder"):  # another agency's contact, a manager
        assert w.client.get(f"{API}/referrals", headers=w.auth(user)).status_code in (403, 404)
        assert w.client.post(f"{API}/referrals", json=referral(), headers=w.auth(user)).status_code in (403, 404)
    assert w.client.post(f"{API}/referrals", json=referral(), headers=w.auth("koordinator")).status_code == 404
    assert row(w, mine["id"]).status == "received"


def test_a_referral_sent_as_a_fhir_service_request_reaches_the_queue(world: World) -> None:
    w = world
    r = w.client.post(f"{API}/referrals/fhir", content=json.dumps(service_request()),
                      headers={**w.auth("politi"), "Content-Type": "application/fhir+json"})
    assert r.status_code == 201, r.text
    waiting = {item["id"]: item for item in queue(w)}[r.json()["id"]]
    assert (waiting["name"], waiting["phone"], waiting["what_happened"]) == (NAME, PHONE, WHAT)
    assert (waiting["risk"], waiting["contact_agreed"], waiting["unit"]) == ("medium", True, UNIT)


@pytest.mark.parametrize(("changes", "field"), [
    ({"subject": {"reference": "#nobody"}}, "subject"),
    ({"note": []}, "note"),
    ({"priority": "whenever"}, "priority"),
    ({"performer": []}, "performer"),
    ({"extension": []}, "extension"),
    ({"intent": None}, "intent"),
    ({"contained": [{"resourceType": "Patient", "id": "p1", "name": [{"text": NAME}]}]}, "telecom"),
])
def test_an_invalid_service_request_is_a_4xx_problem_naming_the_field_never_the_value(
        world: World, changes: dict[str, Any], field: str) -> None:
    w = world
    body = {k: v for k, v in service_request(**changes).items() if v is not None}
    r = w.client.post(f"{API}/referrals/fhir", json=body, headers=w.auth("politi"))
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert field in problem["detail"] or field in str(problem.get("errors")), problem
    assert NAME not in r.text and PHONE not in r.text and WHAT not in r.text


# -- the measured interval: referral received -> first contact by the crisis centre (K15) --------------------------

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)  # Monday 2 November 2026, 09:00 in Oslo


def test_first_contact_after_a_referral_is_an_interval_of_the_managers_report(core: Forlop) -> None:
    """Six referrals received on Monday morning and accepted an hour later; five reached within the working day
    allowed, one on Wednesday. The report's K15 row counts them from the referral's time (K0 is when it was
    received)."""
    for i in range(6):
        received = T0 + timedelta(minutes=10 * i)
        referral_id = referrals.send(
            engine=core.engine, keys=core.keys, units=(UNIT,), sender="politi", agency="police", unit=UNIT,
            content=referrals.content_of(f"Testperson {i}", PHONE, WHAT), risk="medium", contact_agreed=True,
            public_url="https://forlop.invalid", at=received)
        case = referrals.accept(
            uow=core.uow(), referral_id=referral_id, unit=UNIT, expected_version=1, actor="koordinator",
            keys=core.keys, index_key=core.settings.index_key, reference_prefix="TST", pathway_id="krisesenter",
            at=received + timedelta(hours=1))
        reached = received + (timedelta(hours=3) if i < 5 else timedelta(days=2))
        services.change_case(uow=core.uow(), reference=case.reference, expected_version=None,
                             change=lambda c, at=reached, late=i == 5: c.execute(
                                 CompleteStep("K15", note="Personen svarte ikke" if late else None), actor="k", at=at))
    report = timeliness(engine=core.engine, resolve=core.catalog.resolve, keys=core.keys, period="month", start=date(2026, 11, 1),
                        end=date(2026, 11, 30), unit=None, now=datetime(2026, 12, 1, 12, tzinfo=timezone.utc))
    k15 = next(x for x in report.intervals if x.checkpoint == "K15" and x.period == "2026-11")
    assert (k15.interval, k15.deadline, k15.completed) == ("K0→K15", "1 working day", 6)
    assert (k15.due, k15.done_on_time, k15.done_late) == (6, 5, SMALL)  # one late: fewer than 5, not told
    assert k15.median_hours == 3.0


def test_a_key_rotation_re_encrypts_the_referrals_and_they_still_read(core: Forlop) -> None:
    from pathway.crypto import KeyRing, generate_key

    referral_id = referrals.send(
        engine=core.engine, keys=core.keys, units=(UNIT,), sender="politi", agency="police", unit=UNIT,
        content=referrals.content_of(NAME, PHONE, WHAT), risk="low", contact_agreed=False,
        public_url="https://forlop.invalid")
    old = core.settings.encryption_keys
    ring = KeyRing.parse(f"new:{generate_key()},{old}")
    assert referrals.rotate_referral_keys(engine=core.engine, keys=ring) == 1
    assert referrals.rotate_referral_keys(engine=core.engine, keys=ring) == 0  # once
    with core.engine.connect() as conn:
        assert conn.execute(sa.select(referral_t.c.key_id).where(referral_t.c.id == referral_id)).scalar() == "new"
        (waiting,) = referrals.queue(conn, unit=UNIT, keys=ring)
    assert waiting.content.name == NAME


def test_a_referral_sent_again_with_the_same_idempotency_key_is_recorded_once(world: World) -> None:
    w = world
    headers = {**w.auth("politi"), "Idempotency-Key": f"politi-system-{uuid.uuid4()}"}
    first = w.client.post(f"{API}/referrals", json=referral(name="Testperson Gjentatt"), headers=headers)
    again = w.client.post(f"{API}/referrals", json=referral(name="Testperson Gjentatt"), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"] and again.headers.get("Idempotency-Replayed") == "true"
    assert [r["name"] for r in queue(w)].count("Testperson Gjentatt") == 1
