"""A coordinator's deadlines in their desk calendar (issue 13, item 8): an iCalendar feed at a secret, revocable
address, parsed back with ``icalendar``. One event per open step with a deadline of the cases they coordinate, named
by reference and checkpoint, linked to the case page; never anything about the person. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from icalendar import Calendar

from api.web.calendar import FeedTokenHidden
from pathway.accounts import set_password
from pathway.demo import DEMO_PASSWORD
from pathway.services import add_user
from pathway.store.tables import access_t, calendar_feed_t, case_t, step_t, user_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, signed_in, synthetic_person  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
ADDRESS = re.compile(r'id="feed-address" type="text" readonly value="([^"]+)"')
UNIT = "bergen-sentrum"  # koordinator's unit: its demo cases are koordinator's, never in another's feed


def a_coordinator(w: World, *, unit: str = UNIT, language: str = "nb") -> str:
    """A coordinator of their own (no demo case is theirs), signed in to nothing yet."""
    name = f"kal-{uuid.uuid4().hex[:8]}"
    add_user(engine=w.core.engine, username=name, role="coordinator", unit=unit, language=language)
    set_password(w.core.engine, name, DEMO_PASSWORD)  # the demo users' password (signed_in's default)
    return name


def with_feed(w: World, *, language: str = "nb") -> tuple[str, str]:
    """A coordinator of their own and the address of their feed."""
    me = a_coordinator(w, language=language)
    return me, make_address(page_as(w, me))


def page_as(w: World, username: str) -> TestClient:
    return signed_in(TestClient(w.app, raise_server_exceptions=True), username)


def make_address(client: TestClient) -> str:
    csrf = CSRF.search(client.get("/calendar").text).group(1)  # type: ignore[union-attr]
    r = client.post("/calendar", data={"csrf": csrf})
    assert r.status_code == 200, r.text
    return ADDRESS.search(r.text).group(1)  # type: ignore[union-attr]


def feed_path(address: str) -> str:
    path = address.split("://", 1)[1]
    return path[path.index("/"):]


def events(w: World, address: str) -> dict[str, Any]:
    """The feed's events by UID, after checking that it is a calendar."""
    r = w.client.get(feed_path(address))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/calendar")
    cal = Calendar.from_ical(r.content)
    assert str(cal["version"]) == "2.0" and cal["prodid"]
    return {str(e["uid"]): e for e in cal.walk("VEVENT")}


def assigned_case(w: World, coordinator: str, person: dict[str, Any]) -> dict[str, Any]:
    """A case of UNIT opened by koordinator for ``person`` and given to ``coordinator``, with an ad-hoc step whose
    title names the person (a coordinator may type anything there: the feed must not show it)."""
    reference = w.open_case(person)["reference"]
    w.operate(reference, "coordinator", {"coordinator": coordinator})
    due = (datetime.now(timezone.utc) + timedelta(days=3)).isoformat()
    return w.operate(reference, "steps", {"title": f"Ring {person['name']} om bolig", "owner": "crisis_centre",
                                          "due_at": due, "reason": "avtalt"})


def open_steps_with_deadline(w: World, detail: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's open steps with a deadline, as the API shows them, each with its id (the store's: the API does
    not show it) under "id"."""
    with w.core.engine.connect() as conn:
        ids = {(r.code, r.occurrence): r.id for r in conn.execute(
            sa.select(step_t.c.id, step_t.c.code, step_t.c.occurrence).join(case_t, case_t.c.id == step_t.c.case_id)
            .where(case_t.c.reference == detail["reference"]))}
    return [{**s, "id": ids[(s["code"], s["occurrence"])]} for s in detail["steps"]
            if s["state"] in ("pending", "active") and s["due_at"]]


def test_the_feed_has_an_event_per_open_step_of_the_coordinators_cases_and_nothing_about_the_person(
        world: World) -> None:
    w = world
    me, address = with_feed(w)
    people = [synthetic_person(), synthetic_person()]
    details = [assigned_case(w, me, p) for p in people]
    unassigned = w.open_case(synthetic_person())["reference"]  # the unit's, not mine: not in my calendar
    found = events(w, address)

    expected = {s["id"]: (d, s) for d in details for s in open_steps_with_deadline(w, d)}
    assert expected and set(found) == {f"{sid}@forlop" for sid in expected}
    base = w.core.settings.public_url.rstrip("/")
    checkpoints = w.core.catalog.latest(w.core.settings.default_pathway).checkpoint
    for sid, (detail, step) in expected.items():
        event = found[f"{sid}@forlop"]
        name = "Tillagt steg" if step["adhoc"] else checkpoints[step["code"]].name.nb
        assert str(event["summary"]) == f"{detail['reference']} · {step['code']} {name}"
        # iCalendar has whole seconds
        assert event.decoded("dtstart") == datetime.fromisoformat(step["due_at"]).replace(microsecond=0)
        assert str(event["url"]) == f"{base}/cases/{detail['reference']}"
    assert any(s["adhoc"] for _, s in expected.values())

    raw = w.client.get(feed_path(address)).content.decode()
    # Unfolded (a long line is cut every 75 octets) and every value decoded (commas escaped), so that no name can
    # hide across a fold.
    cal = Calendar.from_ical(raw)
    raw = raw.replace("\r\n ", "") + "\n".join(str(v) for c in cal.walk() for v in c.values())
    assert unassigned not in raw
    for person in people:
        for field in ("name", "address", "safe_contact", "birth_date"):
            assert person[field] not in raw, field
        assert "Ring " not in raw and " om bolig" not in raw  # the ad-hoc step's free-text title


def test_the_events_keep_their_uid_while_the_step_lives_and_an_ended_step_leaves_the_feed(world: World) -> None:
    w = world
    me, address = with_feed(w)
    detail = assigned_case(w, me, synthetic_person())
    before = events(w, address)
    done = next(s for s in open_steps_with_deadline(w, detail) if s["code"] == "K1")
    w.operate(detail["reference"], "steps/K1/complete", {"note": "kartlagt"})
    after = events(w, address)
    assert f"{done['id']}@forlop" in before and f"{done['id']}@forlop" not in after
    kept = set(before) - {f"{done['id']}@forlop"}
    assert kept <= set(after)
    for uid in kept:
        assert after[uid].decoded("dtstart") == before[uid].decoded("dtstart")


def test_other_coordinators_cases_are_not_in_the_feed_even_of_the_same_unit(world: World) -> None:
    w = world
    me, address = with_feed(w)
    mine = assigned_case(w, me, synthetic_person())["reference"]
    theirs = assigned_case(w, "koordinator", synthetic_person())["reference"]
    seen = {str(e["summary"]).split(" · ")[0] for e in events(w, address).values()}
    assert seen == {mine} and theirs not in seen
    # koordinator's own feed has their cases (the demo's too), never mine; koordinator2 (another unit) has none
    # of this unit's.
    theirs_seen = {str(e["summary"]).split(" · ")[0] for e in events(w, make_address(page_as(w, "koordinator")))
                   .values()}
    assert theirs in theirs_seen and mine not in theirs_seen
    other_unit = {str(e["summary"]).split(" · ")[0] for e in events(w, make_address(page_as(w, "koordinator2")))
                  .values()}
    assert not other_unit & set(w.references(unit=UNIT))


def test_a_coordinator_moved_to_another_unit_no_longer_sees_the_old_units_cases(world: World) -> None:
    w = world
    me, address = with_feed(w)
    assigned_case(w, me, synthetic_person())
    assert events(w, address)
    with w.core.engine.begin() as conn:  # as an administrator's change of unit leaves it
        conn.execute(sa.update(user_t).where(user_t.c.username == me).values(unit="bergen-nord"))
    assert events(w, address) == {}  # the policy lists the new unit's cases only


def test_each_read_of_the_feed_is_in_the_access_log_per_case_shown(world: World) -> None:
    w = world
    me = a_coordinator(w)
    client = page_as(w, me)
    address = make_address(client)
    references = [assigned_case(w, me, synthetic_person())["reference"] for _ in range(2)]
    events(w, address)
    with w.core.engine.connect() as conn:
        rows = conn.execute(sa.select(access_t).where(access_t.c.username == me)).all()
    assert sorted(r.case_reference for r in rows if r.action == "calendar.read") == sorted(references)
    assert all(r.role == "coordinator" and r.status == 200 for r in rows)
    assert [r.action for r in rows].count("calendar.create") == 1  # making the address is logged too
    token = feed_path(address).removeprefix("/calendar/").removesuffix(".ics")
    assert token not in str([tuple(r) for r in rows])  # never the address itself


def test_an_empty_feed_is_still_a_calendar_and_its_read_is_logged_once(world: World) -> None:
    w = world
    me, address = with_feed(w)
    assert events(w, address) == {}
    with w.core.engine.connect() as conn:
        reads = conn.execute(sa.select(access_t.c.case_reference).where(
            access_t.c.username == me, access_t.c.action == "calendar.read")).scalars().all()
    assert reads == [None]


def test_an_unknown_revoked_or_replaced_address_answers_404(world: World) -> None:
    w = world
    me = a_coordinator(w)
    client = page_as(w, me)
    first = make_address(client)
    second = make_address(client)  # a new address stops the old one
    assert w.client.get(feed_path(first)).status_code == 404
    assert w.client.get(feed_path(second)).status_code == 200
    for guess in ("/calendar/fc_guessed.ics", "/calendar/x.ics", feed_path(second).replace("fc_", "fp_")):
        r = w.client.get(guess)
        assert r.status_code == 404, guess
    csrf = CSRF.search(client.get("/calendar").text).group(1)  # type: ignore[union-attr]
    r = client.post("/calendar/revoke", data={"csrf": csrf})
    assert r.status_code == 200 and "trukket tilbake" in r.text
    r = w.client.get(feed_path(second))
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert feed_path(second).split("/")[-1] not in r.text
    with w.core.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(calendar_feed_t).where(
            calendar_feed_t.c.username == me, calendar_feed_t.c.revoked_at.is_(None))).scalar() == 0


def test_the_address_is_shown_once_and_only_its_hash_is_stored(world: World) -> None:
    w = world
    me = a_coordinator(w)
    client = page_as(w, me)
    address = make_address(client)
    token = feed_path(address).removeprefix("/calendar/").removesuffix(".ics")
    assert address.startswith(w.core.settings.public_url.rstrip("/") + "/calendar/fc_")
    again = client.get("/calendar")
    assert again.status_code == 200 and token not in again.text and "Du har en adresse" in again.text
    with w.core.engine.connect() as conn:
        stored = conn.execute(sa.select(calendar_feed_t).where(calendar_feed_t.c.username == me)).one()
    assert token not in str(tuple(stored)) and len(stored.token_hash) == 64


def test_a_deactivated_users_feed_stops_at_once(world: World) -> None:
    w = world
    me, address = with_feed(w)
    assigned_case(w, me, synthetic_person())
    assert events(w, address)
    r = w.client.post(f"{API}/users/{me}/deactivate", headers=w.auth("admin"))
    assert r.status_code == 200, r.text
    assert w.client.get(feed_path(address)).status_code == 404
    # ... and coming back does not bring the old address back: the user makes a new one
    assert w.client.post(f"{API}/users/{me}/reactivate", headers=w.auth("admin")).status_code == 200
    assert w.client.get(feed_path(address)).status_code == 404


def test_the_feed_speaks_the_users_language(world: World) -> None:
    w = world
    me, address = with_feed(w, language="en")
    detail = assigned_case(w, me, synthetic_person())
    checkpoints = w.core.catalog.latest(w.core.settings.default_pathway).checkpoint
    found = events(w, address)
    k1 = next(s for s in open_steps_with_deadline(w, detail) if s["code"] == "K1")
    assert str(found[f"{k1['id']}@forlop"]["summary"]) == f"{detail['reference']} · K1 {checkpoints['K1'].name.en}"
    assert any(str(e["summary"]).endswith("Added step") for e in found.values())


def test_the_page_is_the_coordinators_in_bokmal_with_english_available(world: World) -> None:
    w = world
    client = page_as(w, "koordinator")
    r = client.get("/calendar")
    assert r.status_code == 200 and "Frister i kalenderen din" in r.text and 'href="/calendar"' in r.text
    client.cookies.set("forlop_lang", "en")
    assert "Deadlines in your calendar" in client.get("/calendar").text
    for other in ("politi", "leder", "admin"):
        assert page_as(w, other).get("/calendar").status_code == 404
    csrf_less = client.post("/calendar", data={})
    assert csrf_less.status_code == 403


@pytest.mark.any_date  # a log filter: no dates
def test_the_servers_access_log_never_shows_a_feeds_token() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("10.0.0.7", "GET", "/calendar/fc_secret123.ics", "1.1", 200), None)
    assert FeedTokenHidden().filter(record)
    assert "fc_secret123" not in record.getMessage() and "/calendar/[feed].ics" in record.getMessage()


def test_a_paused_cases_events_say_that_its_clock_is_stopped(world: World) -> None:
    w = world
    me, address = with_feed(w)
    paused = assigned_case(w, me, synthetic_person())["reference"]
    running = assigned_case(w, me, synthetic_person())["reference"]
    w.operate(paused, "pause", {"reason": "personen er på sykehus"})
    notes = {str(e["summary"]).split(" · ")[0]: str(e["description"]) for e in events(w, address).values()}
    assert "Klokken i saken er stoppet" in notes[paused]
    assert "Klokken i saken er stoppet" not in notes[running]
    assert notes[paused].endswith(f"/cases/{paused}")
