"""Hostile input through HTTP and the command line: always a 4xx (or a non-zero exit) that says what and where,
never a 500; stored text stays data (exact, never evaluated, never rendered as markup); memory stays bounded.

The API tests run on the seeded world of ``api_support`` (SQLite and PostgreSQL); the header and chunked-body
tests run against a real ``forlop serve`` (uvicorn with h11), because the test client has neither limit.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from markupsafe import escape
from sqlmodel import SQLModel

from api.limits import MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_HEADERS, RequestLimits
from notifications.dispatcher import to_message
from notifications.render import render
from pathway.scheduler import run_scan
from pathway.store.tables import case_t, outbox_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, ROOT, World, digest_on_a_working_day, synthetic_person  # noqa: E402
from tests.integration.support import wait_until  # noqa: E402
from tests.suite import processes  # noqa: E402
from pathway.definition import load_definition  # noqa: E402
from tests.unit.conftest import SHIPPED  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

# Asserts nothing that depends on the date: not run again at the Makefile's TEST_DATES.
pytestmark = pytest.mark.any_date

K = "koordinator"
PROBLEM = "application/problem+json"
MB = 1024 * 1024
FORLOP = Path(sys.executable).with_name("forlop")

SQL_INJECTIONS = ["'; DROP TABLE pathway_case;--", '" OR 1=1 --']
TEMPLATE_INJECTIONS = ["{{7*7}}", "{% raw %}", "${7*7}", "<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]
HOSTILE = SQL_INJECTIONS + TEMPLATE_INJECTIONS
EXTRA_UNITS = tuple(HOSTILE)  # an operator could configure any text as a unit (FORLOP_UNITS)


def refused(r: httpx.Response, *statuses: int) -> dict[str, Any]:
    """A problem+json refusal with one of ``statuses`` (any 4xx if none given); its body."""
    assert r.status_code != 500, f"a 500: {r.text[:300]}"
    assert (r.status_code in statuses) if statuses else (400 <= r.status_code < 500), f"{r.status_code} {r.text[:300]}"
    assert r.headers["content-type"] == PROBLEM, r.headers
    body = r.json()
    assert body["status"] == r.status_code and body["detail"], body
    return body  # type: ignore[no-any-return]


# -- size: bodies and headers --------------------------------------------------------------------------------------


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


def test_a_10_mb_json_body_is_refused_with_413_naming_the_limit(world: World) -> None:
    w = world
    body = b'{"reason": "' + b"a" * (10 * MB) + b'"}'
    for headers in ({**w.auth(K), "Content-Type": "application/json"}, {"Content-Type": "application/json"}):
        problem = refused(w.lenient.post(f"{API}/cases", content=body, headers=headers), 413)
        assert problem["type"] == "/problems/request-too-large" and problem["limit"] == MAX_BODY_BYTES
        assert str(MAX_BODY_BYTES) in problem["detail"]


def test_a_chunked_body_without_content_length_is_refused_once_it_passes_the_limit(world: World) -> None:
    w = world
    headers = {**w.auth(K), "Content-Type": "application/json"}
    r = w.lenient.post(f"{API}/cases", content=_chunks(10 * MB), headers=headers)
    assert "content-length" not in {k.lower() for k in r.request.headers}
    problem = refused(r, 413)
    assert problem["limit"] == MAX_BODY_BYTES
    form = w.lenient.post(f"{API}/auth/token", content=_chunks(2 * MB),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    refused(form, 413)


def test_a_body_just_under_the_limit_reaches_validation(world: World) -> None:
    w = world
    body = json.dumps({"reason": "a" * (MAX_BODY_BYTES - 100)}).encode()
    assert len(body) < MAX_BODY_BYTES
    problem = refused(w.lenient.post(f"{API}/cases", content=body, headers={**w.auth(K), "Content-Type": "application/json"}),
                      422)
    assert problem["errors"][0]["loc"] == ["body", "reason"]


def test_too_many_or_too_large_headers_are_refused_with_431(world: World) -> None:
    w = world
    many = {f"X-Filler-{i}": "x" for i in range(MAX_HEADERS + 1)}
    problem = refused(w.lenient.get("/healthz", headers=many), 431)
    assert problem["limit"] == MAX_HEADERS
    problem = refused(w.lenient.get(f"{API}/me", headers={**w.auth(K), "X-Big": "x" * MAX_HEADER_BYTES}), 431)
    assert problem["limit"] == MAX_HEADER_BYTES and str(MAX_HEADER_BYTES) in problem["detail"]
    assert w.lenient.get(f"{API}/me", headers={**w.auth(K), "X-Fair": "x" * 8000}).status_code == 200


def _asgi_answer(headers: list[tuple[bytes, bytes]], raw_path: bytes = b"/healthz",
                 query: bytes = b"") -> tuple[int, dict[str, Any]]:
    """Call the middleware alone with a hand-made scope: what no HTTP client would send."""
    reached: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": raw_path.decode("latin-1"), "raw_path": raw_path,
             "query_string": query, "headers": headers, "http_version": "1.1", "scheme": "http",
             "server": ("test", 80), "client": ("test", 1), "root_path": ""}
    asyncio.run(RequestLimits(app)(scope, receive, send))
    assert not reached, "the app must not see a refused request"
    return sent[0]["status"], json.loads(sent[1]["body"])


@pytest.mark.parametrize("value", [b"abc", b"-1", b"1e9", b"99999999999999999999999", b" 12"])
def test_a_malformed_content_length_is_400(value: bytes) -> None:
    status, body = _asgi_answer([(b"content-length", value)])
    assert status == 400 and body["type"] == "/problems/malformed-request" and "Content-Length" in body["detail"]


def test_two_different_content_lengths_are_400() -> None:
    status, _ = _asgi_answer([(b"content-length", b"1"), (b"content-length", b"2")])
    assert status == 400


# -- malformed bodies and URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    b"[" * 100_000,
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    b'{"reason": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
], ids=["open", "closed", "objects", "in-a-field"])
def test_json_nested_100_000_deep_is_a_4xx_not_a_recursion_error(world: World, body: bytes) -> None:
    w = world
    refused(w.lenient.post(f"{API}/cases", content=body, headers={**w.auth(K), "Content-Type": "application/json"}))


def test_json_nested_within_the_parser_s_depth_is_a_422_where_it_does_not_fit(world: World) -> None:
    w = world
    nested = json.loads("[" * 500 + "]" * 500)
    problem = refused(w.lenient.post(f"{API}/cases", json={"conditions": nested}, headers=w.auth(K)), 422)
    assert problem["errors"][0]["loc"][:2] == ["body", "conditions"]
    person = {"name": {"a": nested}}
    problem = refused(w.lenient.post(f"{API}/cases", json={"person": person}, headers=w.auth(K)), 422)
    assert problem["errors"][0]["loc"][:3] == ["body", "person", "name"]


def test_invalid_utf8_in_a_json_body_is_a_400_saying_where(world: World) -> None:
    w = world
    before = len(w.references())
    bodies = {b'{"reason": "\xff\xfe"}': 12, b'{"reason": "\xc3"}': 12, b'{"\xed\xa0\x80": 1}': 2,  # a surrogate
              b'{"reason": "\xc0\xaf"}': 12}  # an overlong "/"
    for body, at in bodies.items():
        for content_type in ("application/json", "application/json; charset=utf-8"):
            problem = refused(w.lenient.post(f"{API}/cases", content=body,
                                             headers={**w.auth(K), "Content-Type": content_type}), 400)
            assert problem["type"] == "/problems/malformed-request" and f"not valid UTF-8 (byte {at})" in problem["detail"]
    chunked = refused(w.lenient.post(f"{API}/cases", content=iter([b'{"reason": "\xe2\x82', b'\xac\xff"}']),
                                     headers={**w.auth(K), "Content-Type": "application/json"}), 400)
    assert "byte 15" in chunked["detail"]  # a character split over two chunks is fine; the 0xff after it is not
    assert len(w.references()) == before, "nothing is stored from a body that is not UTF-8"


def test_invalid_utf8_in_a_form_body_is_a_400_and_signs_nobody_in(world: World) -> None:
    w = world
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for body in (b"username=koordinator&password=demo\xff", b"username=koordinator\xff&password=demo", b"\xff\xfe"):
        problem = refused(w.lenient.post(f"{API}/auth/token", content=body, headers=form), 400)
        assert "not valid UTF-8" in problem["detail"]
    # percent-encoded bytes that are no UTF-8 decode to U+FFFD: a name and a password nobody has
    refused(w.lenient.post(f"{API}/auth/token", content=b"username=koordinator%ff&password=demo%c3", headers=form), 401)
    assert w.lenient.post(f"{API}/auth/token", content=b"username=koordinator&password=demo",
                          headers=form).status_code == 200  # the same form in UTF-8 signs in


@pytest.mark.parametrize("url", [
    f"{API}/cases/%ff%fe", f"{API}/cases/BGO-2026-0001%c3", f"{API}/cases?q=%ff", f"{API}/cases?phase=%ed%a0%80",
    f"{API}/cases?stage=%ed%a0%80",
    "/healthz?x=%c0%af", f"{API}/pathways/%ff/1/diagram",
])
def test_invalid_utf8_in_the_url_is_400(world: World, url: str) -> None:
    w = world
    problem = refused(w.lenient.get(url, headers=w.auth(K)), 400)
    assert problem["type"] == "/problems/malformed-request" and "UTF-8" in problem["detail"]


# -- values at the edges of what the engine can compute (these were 500s) -----------------------------------------


def _operate(w: World, reference: str, path: str, body: dict[str, Any]) -> httpx.Response:
    headers = {**w.auth(K), "If-Match": f'"{w.version(reference)}"'}
    return w.lenient.post(f"{API}/cases/{reference}/{path}", json=body, headers=headers)


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59Z",
                                  "9999-12-31T23:59:59-05:00", "1969-12-31T23:59:59Z", "2100-01-01T00:00:00Z"])
def test_a_time_at_the_ends_of_the_calendar_is_a_422_naming_the_field(world: World, when: str) -> None:
    w = world
    problem = refused(w.lenient.post(f"{API}/cases", json={"first_contact_at": when, "reason": "etterregistrert"},
                                     headers=w.auth(K)), 422)
    assert problem["errors"][0]["loc"] == ["body", "first_contact_at"]
    reference = w.open_case()["reference"]
    step = {"title": "Følge til lege", "owner": "coordinator", "reason": "avtalt", "due_at": when}
    problem = refused(_operate(w, reference, "steps", step), 422)
    assert problem["errors"][0]["loc"] == ["body", "due_at"]
    problem = refused(_operate(w, reference, "milestones/move_out_planned", {"when": when}), 422)
    assert problem["errors"][0]["loc"] == ["body", "when"]


@pytest.mark.parametrize("params", [{"end": "9999-12-31"}, {"start": "9999-12-01", "end": "9999-12-31"}, {"end": "0001-01-01"},
                                    {"start": "0001-01-01", "end": "0001-02-01", "scope": "all"},
                                    {"start": "1969-06-01", "end": "1970-02-01", "period": "tertial"}])
def test_a_report_period_at_the_ends_of_the_calendar_is_a_422(world: World, params: dict[str, str]) -> None:
    w = world
    for path in ("timeliness", "timeliness.csv"):
        problem = refused(w.lenient.get(f"{API}/reports/{path}", params=params, headers=w.auth("leder")), 422)
        assert "mellom 1970 og 2100" in problem["detail"] and problem["code"] == "span-refused"  # bokmål by default
        english = w.lenient.get(f"{API}/reports/{path}", params=params,
                                headers={**w.auth("leder"), "Accept-Language": "en"})
        assert "between 1970 and 2100" in refused(english, 422)["detail"]


def _cursor(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


NIL = str(uuid.UUID(int=0))
SORTS = ["next_due", "opened_at", "reference"]


@pytest.mark.parametrize("values", [
    ["x", "y"], [1, 2], [None, None], [{"a": 1}, NIL], [["a"], NIL], ["2026-01-01T00:00:00+00:00", "not-a-uuid"],
    ["2026-01-01T00:00:00+00:00", 5], "a string", {"a": 1, "b": 2}, [1, 2, 3], [],
])
@pytest.mark.parametrize("sort", SORTS)
def test_a_forged_list_cursor_is_a_422(world: World, values: Any, sort: str) -> None:
    w = world
    r = w.lenient.get(f"{API}/cases", params={"cursor": _cursor(values), "sort": sort}, headers=w.auth(K))
    assert refused(r, 422)["detail"].startswith("cursor:")


@pytest.mark.parametrize("value", ["2026-01-01T00:00:00", "0001-01-01T00:00:00+05:00", "yesterday", ""])
def test_a_cursor_whose_key_is_no_aware_time_is_a_422_when_sorting_by_time(world: World, value: str) -> None:
    w = world
    for sort in ("next_due", "opened_at"):
        r = w.lenient.get(f"{API}/cases", params={"cursor": _cursor([value, NIL]), "sort": sort}, headers=w.auth(K))
        refused(r, 422)
    by_reference = w.lenient.get(f"{API}/cases", params={"cursor": _cursor([value, NIL]), "sort": "reference"},
                                 headers=w.auth(K))
    assert by_reference.status_code == 200, by_reference.text  # any text is a reference to page after


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00", "1970-01-01T00:00:00Z"])
@pytest.mark.parametrize("sort", SORTS)
def test_a_well_formed_cursor_at_the_ends_of_time_is_answered(world: World, value: str, sort: str) -> None:
    w = world
    r = w.lenient.get(f"{API}/cases", params={"cursor": _cursor([value, NIL]), "sort": sort, "status": "all"},
                      headers=w.auth(K))
    assert r.status_code == 200, r.text


# -- injection: every free-text field stores the exact text, and nothing evaluates it -----------------------------


def _events(w: World, reference: str) -> list[dict[str, Any]]:
    r = w.client.get(f"{API}/cases/{reference}", headers=w.auth(K))
    assert r.status_code == 200, r.text
    return r.json()["timeline"]  # type: ignore[no-any-return]


def _ok(r: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert r.status_code in (statuses or (200,)), f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}"
    return r.json() if r.content else {}  # type: ignore[no-any-return]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_in_every_free_text_field_is_stored_exactly_and_never_evaluated(world: World, text: str) -> None:
    w = world
    key = {"Idempotency-Key": text}
    first_contact = (datetime.now(timezone.utc) - timedelta(days=6)).isoformat()
    person = synthetic_person(name=f"{text} Oppdiktet", safe_contact=text, address=text, interpreter_language=text)
    opened = w.lenient.post(f"{API}/cases", json={"person": person, "first_contact_at": first_contact, "reason": text},
                            headers={**w.auth(K), **key})
    reference = _ok(opened, 201)["reference"]
    assert w.lenient.post(f"{API}/cases", json={"person": person, "first_contact_at": first_contact, "reason": text},
                          headers={**w.auth(K), **key}).json()["reference"] == reference  # the key, stored and found

    # the person record, read back and found by its name
    stored = _ok(w.client.get(f"{API}/cases/{reference}/person", headers=w.auth(K)))
    assert {k: stored[k] for k in ("name", "safe_contact", "address", "interpreter_language")} == \
        {k: person[k] for k in ("name", "safe_contact", "address", "interpreter_language")}
    assert _ok(w.client.post(f"{API}/cases/search", json={"name": person["name"]}, headers=w.auth(K))) == [reference]

    # every operation that takes text (K1 is overdue by now: completing it needs the deviation's reason)
    _ok(_operate(w, reference, "steps/K1/complete", {"note": text}))
    _ok(_operate(w, reference, "pause", {"reason": text}))
    _ok(_operate(w, reference, "resume", {"reason": text}))
    due = (datetime.now(timezone.utc) + timedelta(days=3)).isoformat()
    added = _ok(_operate(w, reference, "steps", {"title": text, "owner": "coordinator", "reason": text, "due_at": due}))
    adhoc = next(s for s in added["steps"] if s["adhoc"])
    assert adhoc["name"] == text
    _ok(_operate(w, reference, f"steps/{adhoc['code']}/complete", {"note": text}))
    refused(_operate(w, reference, "coordinator", {"coordinator": text[:64], "reason": text}), 422)  # no such user
    _ok(_operate(w, reference, "coordinator", {"coordinator": K, "reason": text}))
    _ok(_operate(w, reference, "consents/police", {"scope": ["name"], "reason": text}))
    _ok(_operate(w, reference, "conditions/children", {"value": True, "reason": text}))
    _ok(_operate(w, reference, "milestones/move_out_planned", {"when": due, "reason": text}))
    refused(_operate(w, reference, "close", {"outcome": text[:64], "reason": text}))  # not an outcome code
    segment = quote(text, safe="")
    for path in (f"steps/{segment}/complete", f"transitions/{segment}", f"milestones/{segment}", f"consents/{segment}",
                 f"conditions/{segment}"):
        refused(_operate(w, reference, path, {"reason": text, "value": True}))
    stale = w.lenient.post(f"{API}/cases/{reference}/pause", json={"reason": text},
                           headers={**w.auth(K), "If-Match": text})
    assert refused(stale, 422)["detail"].startswith("If-Match")
    _ok(_operate(w, reference, "transfer", {"municipality": text, "reason": text}))

    timeline = _events(w, reference)
    by_operation: dict[str, list[dict[str, Any]]] = {}
    for event in timeline:
        by_operation.setdefault(event["operation"], []).append(event)
    assert by_operation["open"][0]["reason"] == text
    assert [e["reason"] for e in by_operation["complete"]] == [text, None]  # the late K1 documents its deviation
    assert [e["payload"]["note"] for e in by_operation["complete"]] == [text, text]
    for operation in ("pause", "resume", "add_step", "record_consent", "set_condition", "record_milestone", "transfer"):
        assert by_operation[operation][0]["reason"] == text, operation
    assert by_operation["add_step"][0]["payload"]["title"] == text
    assert by_operation["assign_coordinator"][0]["payload"]["coordinator"] == K  # a name must be a user
    assert by_operation["transfer"][0]["payload"]["municipality"] == text
    case = _ok(w.client.get(f"{API}/cases/{reference}", headers=w.auth(K)))
    assert case["coordinator"] == K and case["closed_at"] is not None

    # the partner's side: a declined handover's reason, a completed handover's note
    police_ref, police_task = w.handover_case("police", person=synthetic_person(name=text))
    _ok(w.client.post(f"{API}/tasks/{police_task}/decline", json={"reason": text}, headers=w.auth("politi")))
    nav_ref, nav_task = w.handover_case("nav")
    _ok(w.client.post(f"{API}/tasks/{nav_task}/complete", json={"note": text}, headers=w.auth("nav")))
    declined = [e for e in _events(w, police_ref) if e["operation"] == "update_handover"]
    completed = [e for e in _events(w, nav_ref) if e["operation"] == "update_handover"]
    assert declined[-1]["reason"] == text and declined[-1]["payload"]["note"] == text
    assert completed[-1]["payload"]["note"] == text
    task = _ok(w.client.get(f"{API}/tasks/{police_task}", headers=w.auth("politi")))
    assert task["status"] == "declined"

    # emergency access from another unit, a personal token's name, searches and filters
    _ok(w.client.post(f"{API}/cases/{reference}/break-glass", json={"reason": f"{text} (akutt)"},
                      headers=w.auth("koordinator2")))
    grants = _ok(w.client.get(f"{API}/cases/{reference}", headers=w.auth(K)))["emergency_access"]
    assert [g["reason"] for g in grants] == [f"{text} (akutt)"]
    token = _ok(w.client.post(f"{API}/auth/tokens", json={"name": text}, headers=w.auth(K)), 201)
    assert token["name"] == text
    assert text in [t["name"] for t in _ok(w.client.get(f"{API}/auth/tokens", headers=w.auth(K)))]
    for params in ({"q": text[:32]}, {"phase": text}, {"stage": text}, {"coordinator": text[:64]}, {"status": text},
                   {"sort": text}):
        r = w.lenient.get(f"{API}/cases", params=params, headers=w.auth(K))
        assert r.status_code in (200, 422), f"{params}: {r.status_code} {r.text[:200]}"
    assert _ok(w.client.get(f"{API}/audit/access", params={"case": text[:32], "user": text[:64]},
                            headers=w.auth("admin"))) == []
    assert _ok(w.client.post(f"{API}/cases/search", json={"name": text}, headers=w.auth(K))) == [police_ref]

    # user names are a pattern: the injection is refused, never stored
    new_user = {"username": text, "role": "coordinator", "unit": "bergen-sentrum", "password": "langt passord 1"}
    refused(w.lenient.post(f"{API}/users", json=new_user, headers=w.auth("admin")), 422)
    refused(w.lenient.post(f"{API}/auth/token", data={"username": text, "password": text}), 401)

    _assert_every_table_is_there(w)


def _assert_every_table_is_there(w: World) -> None:
    with w.core.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        assert set(SQLModel.metadata.tables) <= tables, set(SQLModel.metadata.tables) - tables
        assert conn.execute(sa.select(sa.func.count()).select_from(case_t)).scalar_one() > 0


def test_hostile_units_reach_notifications_as_text_never_as_markup_or_code(world: World) -> None:
    """A unit is text an operator configures (FORLOP_UNITS; an administrator only chooses from it); it travels into
    the reminders' inbox rows, emails and links. Rendering them must show the text (escaped in HTML), never evaluate
    it. A unit that is not configured is refused, naming the field."""
    w = world
    problem = refused(w.client.post(f"{API}/users", json={"username": f"fiendtlig_x_{w.backend}", "role": "manager",
                                                          "unit": "<b>ukjent</b>", "password": "langt passord"},
                                    headers=w.auth("admin")), 422)
    assert "unit" in str(problem)
    people = []
    for i, text in enumerate(HOSTILE):
        for role in ("coordinator", "manager"):
            name = f"fiendtlig_{role}_{i}_{w.backend}"
            _ok(w.client.post(f"{API}/users", json={"username": name, "role": role, "unit": text, "password": "langt passord",
                                                   "email": f"{name}@example.invalid", "language": "nb" if i % 2 else "en"},
                              headers=w.auth("admin")), 201)
            people.append(name)
        coordinator = f"fiendtlig_coordinator_{i}_{w.backend}"
        token = w.login(coordinator, "langt passord")
        opened = _ok(w.client.post(f"{API}/cases", json={}, headers={"Authorization": f"Bearer {token}"}), 201)
        assert opened["unit"] == text
    later = datetime.now(timezone.utc) + timedelta(days=60)  # every rung of every open step is due
    while run_scan(w.core, now=later).reminders:
        pass
    digest_on_a_working_day(w.core, later)
    with w.core.engine.connect() as conn:
        rows = conn.execute(sa.select(outbox_t.c.id, outbox_t.c.username, outbox_t.c.payload)
                            .where(outbox_t.c.username.in_(people))).all()
    kinds: set[str] = set()
    for row in rows:
        language = "nb" if int(row.username.split("_")[2]) % 2 else "en"
        message = to_message(row.id, row.username, language, row.payload)
        rendered = render(message)
        unit = HOSTILE[int(row.username.split("_")[2])]
        assert message.unit == unit
        kinds.add(message.kind)
        if message.kind == "overdue_digest":  # the one template that says the unit: as it was typed
            assert unit in rendered.text and str(escape(unit)) in rendered.html, rendered
        assert "<script" not in rendered.html and "<img" not in rendered.html, rendered.html
        for part in (rendered.subject, rendered.text, rendered.html):  # every template ran: none of its own syntax is left
            assert "{{" not in part.replace(unit, "").replace(str(escape(unit)), ""), part
    assert "overdue_digest" in kinds and len(kinds) >= 3, kinds
    manager = {"Authorization": f"Bearer {w.login(people[1], 'langt passord')}"}  # the manager of HOSTILE[0]
    inbox = _ok(w.client.get(f"{API}/inbox", headers=manager))
    assert inbox and {n["unit"] for n in inbox} == {HOSTILE[0]}, inbox


# -- path traversal ------------------------------------------------------------------------------------------------

TRAVERSALS = ["../../etc/passwd", "..%2f..%2fetc%2fpasswd", "/etc/passwd", "..\\..\\windows\\win.ini",
              "krisesenter/../krisesenter", "definitions/krisesenter.yaml", "krisesenter.yaml", "....//....//etc/passwd",
              "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..", "."]

_OPENED: list[str] | None = None
LIVE = load_definition(SHIPPED).version  # the shipped definition's version, which the diagram route serves


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes)):
        _OPENED.append(os.fsdecode(args[0]))


@pytest.fixture
def opened_files() -> Iterator[list[str]]:
    """The files this process opens while the test runs (a Python audit hook: every open() passes through it)."""
    global _OPENED
    if not getattr(sys, "_forlop_audit_installed", False):
        sys.addaudithook(_audit)  # a hook cannot be removed; it records only while _OPENED is a list
        sys._forlop_audit_installed = True  # type: ignore[attr-defined]
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


def test_path_traversal_in_a_pathway_id_reads_no_file(world: World, opened_files: list[str]) -> None:
    w = world
    before = len(w.references())
    for name in TRAVERSALS:
        quoted = name.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
        for url in (f"{API}/pathways/{quoted}/{LIVE}/diagram", f"{API}/pathways/{name}/{LIVE}/diagram"):
            r = w.lenient.get(url, headers=w.auth(K))
            if r.request.url.path == f"{API}/pathways/krisesenter/{LIVE}/diagram":  # the client resolved the dots
                assert r.status_code == 200 and r.text.startswith("stateDiagram-v2"), name
                continue
            refused(r, 404)
            assert "root:" not in r.text
        problem = refused(w.lenient.post(f"{API}/cases", json={"pathway": name}, headers=w.auth(K)), 422)
        assert problem["errors"][0]["loc"] == ["body", "pathway"] and name not in problem["detail"]
    assert len(w.references()) == before
    outside = [p for p in opened_files if "passwd" in p or "win.ini" in p or p.startswith("/etc/")]
    assert not outside, outside


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FORLOP_") and k != "DATABASE_URL"}
    environ["FORLOP_ENV"] = "test"
    proc = subprocess.run([str(FORLOP), *args], capture_output=True, text=True, encoding="utf-8", env=environ,
                          cwd=ROOT, timeout=120, check=False)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


def test_the_cli_refuses_a_traversed_or_foreign_path_with_a_clear_message(tmp_path: Path) -> None:
    secret = tmp_path / "not-a-definition.yaml"
    secret.write_text("api_key: SECRET-0xC0FFEE\nuser:x:0:0:gecos-secret:/root:/bin/bash:\n", encoding="utf-8")
    relative = os.path.relpath(secret, ROOT / "definitions")
    cases = {
        "definitions/../../../../../../../etc/passwd": "(document)",
        "../../../../../../etc/passwd": "(document)",
        f"definitions/{relative}": "not a pathway definition",
        "definitions/..%2f..%2fetc%2fpasswd": "cannot read",
        "/etc": "cannot read",
        "/dev/zero": "larger than",
        "definitions/../definitions/../../nowhere.yaml": "cannot read",
    }
    for path, says in cases.items():
        for command in ("validate", "diagram"):
            proc = _cli(command, path)
            output = proc.stdout + proc.stderr
            assert proc.returncode == 2, f"forlop {command} {path}: exit {proc.returncode}\n{output}"
            assert says in output and path in output, f"forlop {command} {path}:\n{output}"
            assert "root:x:0" not in output and "SECRET" not in output and "gecos-secret" not in output, output
            assert "stateDiagram" not in output


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+05:00", "9999-12-31", "1969-12-31T23:00:00Z"])
def test_the_cli_refuses_a_time_at_the_ends_of_the_calendar(tmp_path: Path, when: str) -> None:
    database = ("--database-url", f"sqlite:///{tmp_path / 'forlop.db'}")
    for args in (("scan", "--now", when), ("case", "open", "--unit", "u", "--as", "t", "--first-contact", when)):
        proc = _cli(*args, *database)
        assert proc.returncode == 2 and "between 1970 and 2100" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


# -- memory --------------------------------------------------------------------------------------------------------


def test_200_oversized_or_deep_requests_keep_memory_bounded(world: World) -> None:
    """In process: 10 MB bodies announced by Content-Length, unannounced chunked bodies past the limit, 100,000
    levels of JSON. (The test client joins a chunked body into one bytes object before the app sees any of it, and
    keeps it in a reference cycle until the collector runs: so its chunked bodies here are 2 MB, not 10. The real
    server's memory under 10 MB chunked bodies is measured below, on `forlop serve`.)"""
    w = world
    headers = {**w.auth(K), "Content-Type": "application/json"}
    big = b'{"reason": "' + b"a" * (10 * MB) + b'"}'
    deep = b"[" * 100_000
    gc.collect()
    w.lenient.post(f"{API}/cases", content=deep, headers=headers)  # warm up the routes
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    statuses: dict[int, int] = {}
    began = time.perf_counter()
    try:
        for i in range(200):
            if i % 3 == 0:
                r = w.lenient.post(f"{API}/cases", content=big, headers=headers)
            elif i % 3 == 1:
                r = w.lenient.post(f"{API}/cases", content=_chunks(2 * MB, 64 * 1024), headers=headers)
            else:
                r = w.lenient.post(f"{API}/cases", content=deep, headers=headers)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        peak = tracemalloc.get_traced_memory()[1]
        del r
        gc.collect()
        current = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before  # KiB on Linux
    print(f"\n200 hostile requests in {time.perf_counter() - began:.1f} s: statuses {statuses}; "
          f"traced peak {(peak - start) / MB:.1f} MB above the start, {(current - start) / MB:.1f} MB left; "
          f"max RSS grew {rss_growth / 1024:.1f} MB")
    assert set(statuses) <= {400, 413}, statuses
    assert peak - start < 200 * MB, f"{(peak - start) / MB:.0f} MB"
    assert current - start < 20 * MB, f"{(current - start) / MB:.0f} MB kept after the requests"


# -- a real server: uvicorn's h11 parser in front of the app --------------------------------------------------------


class Server:
    def __init__(self, tmp: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        environ = {k: v for k, v in os.environ.items() if not k.startswith("FORLOP_") and k != "DATABASE_URL"}
        environ.update(FORLOP_ENV="test", FORLOP_SCHEDULER="off", FORLOP_DEFINITIONS_DIR=str(ROOT / "definitions"))
        self.log = tmp / "server.log"
        self.proc = processes.spawn(
            [str(FORLOP), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--database-url",
             f"sqlite:///{tmp / 'forlop.db'}"], cwd=ROOT, env=environ, stdin=subprocess.DEVNULL,
            stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the server did not get ready:\n{self.log.read_text()}")

    def exchange(self, request: bytes, *, body: Iterator[bytes] = iter(())) -> tuple[int, bytes]:
        """Send raw bytes, then ``body`` until the server answers or closes; (status, the answer's head+body)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as conn:
            answer = b""
            try:
                conn.sendall(request)
                conn.setblocking(False)
                for chunk in body:
                    conn.setblocking(True)
                    conn.sendall(chunk)
                    conn.setblocking(False)
                    try:
                        answer += conn.recv(65536)
                    except BlockingIOError:
                        pass
                    if answer:
                        break
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered and closed while the body was still coming: that is the point
            conn.setblocking(True)
            try:
                while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 4 + _length(answer):
                    data = conn.recv(65536)
                    if not data:
                        break
                    answer += data
            except (ConnectionResetError, TimeoutError):
                pass
        assert answer.startswith(b"HTTP/1.1 "), answer[:200]
        return int(answer[9:12]), answer

    def alive(self) -> bool:
        return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).status_code == 200

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def stop(self) -> None:
        processes.end(self.proc, grace=30)


def _length(answer: bytes) -> int:
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not FORLOP.exists():
        pytest.fail(f"the console script is not installed at {FORLOP}")
    running = Server(tmp_path_factory.mktemp("serve"))
    try:
        yield running
    finally:
        running.stop()
        log = running.log.read_text()
        assert "Traceback" not in log and "Exception in" not in log, log[-3000:]


def test_a_real_server_refuses_oversized_and_too_many_headers_with_a_4xx(server: Server) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    attempts = {
        "one 100 KB header": head + b"X-Big: " + b"a" * 100_000 + b"\r\n\r\n",
        "one 1 MB header": head + b"X-Big: " + b"a" * MB + b"\r\n\r\n",
        "5,000 headers": head + b"".join(b"X-H%d: v\r\n" % i for i in range(5000)) + b"\r\n",
        "200 headers": head + b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n",
    }
    for name, request in attempts.items():
        status, answer = server.exchange(request)
        print(f"{name}: {status}")
        assert status in (400, 431), f"{name}: {answer[:300]!r}"
        assert server.alive(), f"the server died on {name}"


def test_a_real_server_logs_the_path_of_a_request_but_never_its_query_string(server: Server) -> None:
    marker = "Tora-Oppdiktadottir-Loggtest"  # synthetic: what a search or filter might carry
    assert httpx.get(f"http://127.0.0.1:{server.port}/healthz?q={marker}&token=hemmelig", timeout=10).status_code == 200
    assert wait_until(lambda: '"GET /healthz HTTP/1.1" 200' in server.log.read_text(), timeout=30)
    log = server.log.read_text()
    assert marker not in log and "hemmelig" not in log and "/healthz?" not in log


def test_a_real_server_refuses_bytes_that_are_no_url(server: Server) -> None:
    for target in (b"/api/v1/cases/\xff\xfe", b"/healthz?q=\xff", b"/healthz%ff", b"/healthz?q=%c3"):
        status, answer = server.exchange(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert status == 400, f"{target!r}: {answer[:300]!r}"
    assert server.alive()


def test_a_real_server_stops_reading_a_chunked_body_at_the_limit_and_memory_stays_flat(server: Server) -> None:
    request = (b"POST /api/v1/cases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (256 * 1024, b"a" * 256 * 1024)
    before = server.rss_mb()
    for _ in range(20):
        status, answer = server.exchange(request, body=iter([chunk] * 40))  # 10 MB, never announced
        assert status == 413, answer[:300]
        problem = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert problem["limit"] == MAX_BODY_BYTES and problem["type"] == "/problems/request-too-large"
    after = server.rss_mb()
    print(f"\nserver RSS {before:.0f} MB before 20 chunked 10 MB bodies, {after:.0f} MB after")
    assert after - before < 200, f"the server grew {after - before:.0f} MB"
    assert server.alive()
