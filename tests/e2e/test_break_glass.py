"""Emergency (break-glass) access end to end, on SQLite and PostgreSQL: the owning unit is told in the grant's own
transaction, the access is read-only unless a write was asked for with its own reason, it ends early or runs out,
and the unit's manager sees every use (page and API). The CLI asks the same policy."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from notifications.dispatcher import to_message
from notifications.render import render
from pathway.errors import NotPermitted
from pathway.metrics.periods import period_key
from pathway.store.access import grant_break_glass
from pathway.store.tables import access_t, break_glass_t, case_t, notification_t, outbox_t, user_t
from pathway.views.access import access_entries

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, signed_in, synthetic_person  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

OWN = "koordinator"  # bergen-sentrum, the unit of the cases under test
OTHER = "koordinator2"  # bergen-nord
THIRD = "koordinator3"  # askoy
MANAGER = "leder"  # manager of bergen-sentrum
REASON = "akutt henvendelse på natt, koordinator utilgjengelig"
WRITE_REASON = "må registrere akutt overlevering til politiet"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def unit_people(world: World) -> dict[str, Any]:
    """Addresses for the owning unit's coordinator and manager, a second coordinator of the unit, one who left, and
    a manager of another unit with an address: who hears of a grant is then a question with a wrong answer."""
    now = datetime.now(timezone.utc)
    with world.core.engine.begin() as conn:
        conn.execute(sa.update(user_t).where(user_t.c.username == OWN)
                     .values(email="koordinator@example.invalid", webhook_url="https://hooks.example.invalid/k"))
        conn.execute(sa.update(user_t).where(user_t.c.username == MANAGER).values(email="leder@example.invalid"))
        for username, role, unit, active in (("bg-kollega", "coordinator", "bergen-sentrum", True),
                                             ("bg-sluttet", "coordinator", "bergen-sentrum", False),
                                             ("bg-leder-nord", "manager", "bergen-nord", True)):
            conn.execute(sa.insert(user_t).values(
                id=uuid.uuid4(), username=username, role=role, unit=unit, agency=None, language="nb",
                email=f"{username}@example.invalid", webhook_url=None, active=active, created_at=now,
                password_hash=None, failed_logins=0, locked_until=None))
    return {"told": {OWN, "bg-kollega", MANAGER}}


def _grant(w: World, reference: str, *, user: str = OTHER, write_reason: str | None = None) -> dict[str, Any]:
    body = {"reason": REASON} if write_reason is None else {"reason": REASON, "write_reason": write_reason}
    r = w.client.post(f"{API}/cases/{reference}/break-glass", json=body, headers=w.auth(user))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _granted_case(w: World, *, write_reason: str | None = None) -> str:
    """A new case of bergen-sentrum, and emergency access to it for the coordinator of bergen-nord."""
    reference: str = w.open_case(synthetic_person())["reference"]
    _grant(w, reference, write_reason=write_reason)
    return reference


def _log(w: World, reference: str, username: str) -> list[Any]:
    with w.core.engine.connect() as conn:
        return list(conn.execute(sa.select(access_t).where(access_t.c.case_reference == reference,
                                                           access_t.c.username == username)
                                 .order_by(access_t.c.at)).all())


def _pause(w: World, reference: str, user: str) -> Any:
    return w.client.post(f"{API}/cases/{reference}/pause", json={"reason": "personen er på sykehus"},
                         headers={**w.auth(user), "If-Match": f'"{w.version(reference)}"'})


# -- the owning unit is told -------------------------------------------------------------------------------------


def test_a_grant_tells_the_owning_units_coordinators_and_manager_and_no_one_else(
        world: World, unit_people: dict[str, Any]) -> None:
    w = world
    person = synthetic_person()
    reference = w.open_case(person)["reference"]

    granted = _grant(w, reference)

    assert granted["access"] == "read" and granted["notified"] == len(unit_people["told"])
    with w.core.engine.connect() as conn:
        inbox = conn.execute(sa.select(notification_t).where(notification_t.c.case_reference == reference,
                                                             notification_t.c.kind == "break_glass")).all()
        outbox = conn.execute(sa.select(outbox_t).where(outbox_t.c.reminder_id.is_(None))).all()
    assert {n.username for n in inbox} == unit_people["told"]  # not the holder, the one who left, nor bergen-nord
    assert all(n.unit == "bergen-sentrum" and n.reminder_id is None for n in inbox)
    links = {n.username: n.link for n in inbox}
    assert links[OWN].endswith(f"/cases/{reference}") and links[MANAGER].endswith("/reports?unit=bergen-sentrum")
    mine = [o for o in outbox if o.payload["case_reference"] == reference]
    assert sorted((o.username, o.channel) for o in mine) == [("bg-kollega", "email"), ("koordinator", "email"),
                                                             ("koordinator", "webhook"), ("leder", "email")]
    for row in mine:
        assert row.status == "pending" and row.payload["actor"] == OTHER
        rendered = render(to_message(row.id, row.username, "nb", row.payload))
        said = "\n".join((rendered.subject, rendered.text, rendered.html))
        assert reference in said and "bergen-sentrum" in said and OTHER in said
        assert REASON not in said and person["name"] not in said and person["address"] not in said
    # the inbox of the API says it too
    seen = w.client.get(f"{API}/inbox", headers=w.auth(MANAGER)).json()
    assert any(n["kind"] == "break_glass" and n["case_reference"] == reference for n in seen)
    assert not any(n["case_reference"] == reference for n in w.client.get(f"{API}/inbox", headers=w.auth(THIRD)).json())


def test_a_grant_refused_tells_no_one(world: World, unit_people: dict[str, Any]) -> None:
    w = world
    with w.core.engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(notification_t)).scalar_one()
    r = w.client.post(f"{API}/cases/BGO-1999-9999/break-glass", json={"reason": REASON}, headers=w.auth(OTHER))
    assert r.status_code == 404
    with w.core.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(notification_t)).scalar_one() == before


# -- read-only unless asked for write ----------------------------------------------------------------------------


def test_a_read_only_grant_refuses_every_write_and_logs_it_and_a_write_grant_allows_it(
        world: World, unit_people: dict[str, Any]) -> None:
    w, reference = world, _granted_case(world)
    version = w.version(reference)
    assert w.client.get(f"{API}/cases/{reference}", headers=w.auth(OTHER)).status_code == 200

    paused = _pause(w, reference, OTHER)
    person = w.client.put(f"{API}/cases/{reference}/person", json=synthetic_person(),
                          headers={**w.auth(OTHER), "If-Match": f'"{version}"'})
    handover = w.client.post(f"{API}/cases/{reference}/handovers", json={"code": "K6", "legal_basis": "avert_crime",
                                                                         "reason": "akutt fare"},
                             headers={**w.auth(OTHER), "If-Match": f'"{version}"'})

    for r in (paused, person, handover):
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "bare lesetilgang" in r.json()["detail"] and "write_reason" in r.json()["detail"]
    assert w.version(reference) == version
    refused = {(e.action, e.status, e.break_glass) for e in _log(w, reference, OTHER) if e.status == 403}
    assert refused == {("case.pause", 403, True), ("person.write", 403, True), ("case.handover", 403, True)}

    granted = _grant(w, reference, write_reason=WRITE_REASON)
    assert granted["access"] == "write"
    assert _pause(w, reference, OTHER).status_code == 200
    assert w.version(reference) == version + 1
    assert ("case.pause", 200, True) in {(e.action, e.status, e.break_glass) for e in _log(w, reference, OTHER)}
    assert WRITE_REASON not in {e.reason for e in _log(w, reference, OTHER)}, "stored sealed under the case's key"
    with w.core.engine.connect() as conn:  # and read, by whoever reviews the log, as it was given
        entries = access_entries(conn, case_reference=reference, username=OTHER, limit=100, keys=w.core.keys)
    assert ("case.break_glass_write", WRITE_REASON) in {(e["action"], e["reason"]) for e in entries}
    # the owning unit's own coordinator writes as before, without any grant
    assert w.client.post(f"{API}/cases/{reference}/resume", json={},
                         headers={**w.auth(OWN), "If-Match": f'"{w.version(reference)}"'}).status_code == 200


def test_a_write_reason_too_short_to_say_anything_is_refused(world: World, unit_people: dict[str, Any]) -> None:
    w = world
    reference = w.open_case(synthetic_person())["reference"]
    r = w.client.post(f"{API}/cases/{reference}/break-glass", json={"reason": REASON, "write_reason": "fordi"},
                      headers=w.auth(OTHER))
    assert r.status_code == 422
    assert w.client.get(f"{API}/cases/{reference}", headers=w.auth(OTHER)).status_code == 404


def test_the_cli_acting_under_a_read_only_grant_is_refused_by_the_same_policy(
        world: World, unit_people: dict[str, Any]) -> None:
    from pathway.cli.cases import _let_at

    w, reference = world, _granted_case(world)
    user, access = _let_at(w.core, OTHER, reference, "case.read")
    assert access.break_glass and access.read_only
    with pytest.raises(NotPermitted, match="read-only"):
        _let_at(w.core, OTHER, reference, "case.pause", write=True)
    assert ("case.pause", 403, "cli") in {(e.action, e.status, e.client) for e in _log(w, reference, OTHER)}
    _grant(w, reference, write_reason=WRITE_REASON)
    assert _let_at(w.core, OTHER, reference, "case.pause", write=True)[1].write


# -- ended early, or run out -------------------------------------------------------------------------------------


def test_the_holder_ends_their_access_early_and_then_finds_nothing(world: World, unit_people: dict[str, Any]) -> None:
    w, reference = world, _granted_case(world, write_reason=WRITE_REASON)

    r = w.client.post(f"{API}/cases/{reference}/break-glass/end", headers=w.auth(OTHER))

    assert r.status_code == 200 and r.json() == {"reference": reference, "ended": [OTHER]}
    assert w.client.get(f"{API}/cases/{reference}", headers=w.auth(OTHER)).status_code == 404
    assert _pause(w, reference, OTHER).status_code == 404
    with w.core.engine.connect() as conn:
        row = conn.execute(sa.select(break_glass_t).join(case_t, case_t.c.id == break_glass_t.c.case_id)
                           .where(case_t.c.reference == reference)).one()
    assert row.ended_by == OTHER and row.ended_at is not None
    # nothing is left to end: ending again is refused as if there were no case
    assert w.client.post(f"{API}/cases/{reference}/break-glass/end", headers=w.auth(OTHER)).status_code == 404


def test_the_owning_unit_ends_someone_elses_access_and_others_may_not(
        world: World, unit_people: dict[str, Any]) -> None:
    w, reference = world, _granted_case(world)
    _grant(w, reference, user=THIRD)

    assert w.client.post(f"{API}/cases/{reference}/break-glass/end", headers=w.auth("koordinator4")).status_code == 404
    assert w.client.post(f"{API}/cases/{reference}/break-glass/end", headers=w.auth(MANAGER)).status_code in (403, 404)
    # the third holder ends only their own, whatever they ask
    mine = w.client.post(f"{API}/cases/{reference}/break-glass/end", params={"username": OTHER},
                         headers=w.auth(THIRD))
    assert mine.json()["ended"] == [THIRD]
    assert w.client.get(f"{API}/cases/{reference}", headers=w.auth(OTHER)).status_code == 200

    r = w.client.post(f"{API}/cases/{reference}/break-glass/end", headers=w.auth(OWN))

    assert r.status_code == 200 and r.json()["ended"] == [OTHER]
    assert w.client.get(f"{API}/cases/{reference}", headers=w.auth(OTHER)).status_code == 404
    assert ("case.break_glass_end", 200) in {(e.action, e.status) for e in _log(w, reference, OWN)}


def test_a_grant_ended_after_the_check_before_a_write_still_refuses_the_write(
        world: World, unit_people: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy is asked again inside the write's own transaction: what it answered a moment before is not enough."""
    from api.routes import operations

    w, reference = world, _granted_case(world, write_reason=WRITE_REASON)
    checked_before = operations.case_access

    def check_then_end(*args: Any, **kwargs: Any) -> tuple[uuid.UUID, bool]:
        allowed = checked_before(*args, **kwargs)  # allowed: the grant still runs
        assert w.client.post(f"{API}/cases/{reference}/break-glass/end", headers=w.auth(OWN)).json()["ended"]
        return allowed

    monkeypatch.setattr(operations, "case_access", check_then_end)
    version = w.version(reference)

    assert _pause(w, reference, OTHER).status_code == 404
    assert w.version(reference) == version
    assert ("case.pause", 404) in {(e.action, e.status) for e in _log(w, reference, OTHER)}


def test_a_grant_that_ran_out_gives_no_access(world: World, unit_people: dict[str, Any]) -> None:
    w = world
    reference = w.open_case(synthetic_person())["reference"]
    long_ago = datetime.now(timezone.utc) - timedelta(hours=13)
    with w.core.engine.begin() as conn:
        case_id = conn.execute(sa.select(case_t.c.id).where(case_t.c.reference == reference)).scalar_one()
        grant_break_glass(conn, username=OTHER, case_id=case_id, reason=REASON, write_reason=WRITE_REASON,
                          granted_at=long_ago, expires_at=long_ago + timedelta(hours=12),
                          public_url="https://forlop.example")
    assert w.client.get(f"{API}/cases/{reference}", headers=w.auth(OTHER)).status_code == 404
    assert _pause(w, reference, OTHER).status_code == 404


# -- the pages ---------------------------------------------------------------------------------------------------


def _browser(w: World, username: str) -> Any:
    from fastapi.testclient import TestClient

    return signed_in(TestClient(w.app), username)


def _csrf(client: Any, path: str) -> str:
    return CSRF.search(client.get(path).text).group(1)  # type: ignore[union-attr]


def test_the_case_page_under_read_only_access_offers_no_change_and_refuses_one_in_bokmal(
        world: World, unit_people: dict[str, Any]) -> None:
    w, reference = world, _granted_case(world)
    other = _browser(w, OTHER)
    page = other.get(f"/cases/{reference}")
    assert page.status_code == 200
    assert "med bare lesetilgang" in page.text and "Be om skrivetilgang" in page.text
    assert f'action="/cases/{reference}/do/pause"' not in page.text
    version = w.version(reference)

    r = other.post(f"/cases/{reference}/do/pause", data={"csrf": _csrf(other, f"/cases/{reference}"),
                                                         "version": str(version), "reason": "personen er på sykehus"})

    assert r.status_code == 403
    assert "Nødtilgangen din til denne saken gir bare lesetilgang" in r.text
    assert w.version(reference) == version
    assert ("case.pause", 403) in {(e.action, e.status) for e in _log(w, reference, OTHER)}


def test_the_case_page_asks_for_write_access_and_ends_emergency_access_with_a_button(
        world: World, unit_people: dict[str, Any]) -> None:
    w, reference = world, _granted_case(world)
    other = _browser(w, OTHER)
    asked = other.post(f"/cases/{reference}/break-glass", data={
        "csrf": _csrf(other, f"/cases/{reference}"), "reason": REASON, "write_reason": WRITE_REASON},
        follow_redirects=False)
    assert asked.status_code == 303
    page = other.get(f"/cases/{reference}")
    assert f'action="/cases/{reference}/do/pause"' in page.text and "Avslutt min nødtilgang nå" in page.text

    own = _browser(w, OWN)
    own_page = own.get(f"/cases/{reference}")
    assert "Avslutt nødtilgangen nå" in own_page.text and OTHER in own_page.text
    ended = own.post(f"/cases/{reference}/break-glass/end", data={"csrf": _csrf(own, f"/cases/{reference}")},
                     follow_redirects=False)

    assert ended.status_code == 303 and ended.headers["location"].startswith(f"/cases/{reference}")
    assert other.get(f"/cases/{reference}").status_code == 404
    assert "Avsluttet" in own.get(f"/cases/{reference}").text


# -- the manager sees every use ----------------------------------------------------------------------------------


def test_the_manager_page_and_report_api_list_the_units_uses(world: World, unit_people: dict[str, Any]) -> None:
    w, reference = world, _granted_case(world, write_reason=WRITE_REASON)
    w.client.post(f"{API}/cases/{reference}/break-glass/end", headers=w.auth(OTHER))
    elsewhere = w.references(unit="bergen-nord")[0]
    _grant(w, elsewhere, user=OWN)  # a use of another unit's case: not this manager's to review

    r = w.client.get(f"{API}/reports/break-glass", headers=w.auth(MANAGER))

    assert r.status_code == 200, r.text
    body = r.json()
    use = next(u for u in body["uses"] if u["case_reference"] == reference)
    assert use["username"] == OTHER and use["access"] == "write" and use["ended_by"] == OTHER
    assert use["ended_at"] is not None and use["granted_at"]
    assert elsewhere not in {u["case_reference"] for u in body["uses"]}
    assert body["unit"] == "bergen-sentrum" and body["count"] == len(body["uses"]) >= 1
    assert body["per_period"][period_key(datetime.now(timezone.utc), "month")] >= 1
    assert sum(body["per_period"].values()) == body["count"]
    assert w.client.get(f"{API}/reports/break-glass", headers=w.auth(OWN)).status_code in (403, 404)
    assert ("break_glass.review", 200) in {(e.action, e.status) for e in _log(w, reference, MANAGER)}

    manager = _browser(w, MANAGER)
    page = manager.get("/reports")
    assert page.status_code == 200
    section = page.text[page.text.index('id="bg-h"'):]
    assert reference in section and OTHER in section and "Lese og skrive" in section
    assert elsewhere not in section
    assert f'<strong id="bg-count">{body["count"]}</strong>' in section
