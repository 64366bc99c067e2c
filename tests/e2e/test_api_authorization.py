"""Who may call what: an authorization matrix generated from the app's own route table.

Every route declares its rule (an ``Allow`` dependency, or ``openapi_extra={"x-public": True}``); a route with
neither fails here, so a new route cannot ship without one. Every route is then called as every role, with real
ids from the seeded data and a minimal valid body, and each answer must be exactly the intended one:
no token (or a forged one) -> 401; a role the rule does not allow -> 403, or 404 where the rule hides the route;
an allowed role -> 2xx, except that a coordinator of another unit gets 404 for a case of bergen-sentrum (until
break-glass) and the NAV contact gets 404 for a police task. Every 404 is the same bare "fant ikke", so that
nobody learns whether a case or a task exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from api.deps import Allow
from pathway.definition import load_definition
from tests.unit.conftest import SHIPPED

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import (  # noqa: E402
    ACTORS,
    API,
    ROLE_OF_ACTOR,
    RouteInfo,
    World,
    allow_of,
    api_routes,
    is_public,
    synthetic_person,
)

pytest_plugins = ["tests.e2e.api_support"]  # the world fixture (one seeded database per module)

# Rejected callers first, the allowed ones last: an allowed call may change the resource under test.
ORDER = ["anonymous", "forged", "nav", "manager", "admin", "other_coordinator", "police", "coordinator"]
FORGED = "fs_" + "x" * 43
HIDDEN_404 = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "fant ikke"}  # bokmål: the default


def _future(days: int = 5) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=days)).isoformat()


_USERS = iter(range(1, 10_000))

# A minimal valid body per body model (a route whose model is missing here fails the test: add one).
BODIES: dict[str, Callable[[], dict[str, Any]]] = {
    "PersonalTokenIn": lambda: {"name": "matrise"},
    "OpenBody": lambda: {"person": synthetic_person()},
    "PersonRecord": lambda: synthetic_person(),
    "CompleteStepBody": lambda: {},
    "SkipStepBody": lambda: {"reason": "ikke aktuelt for denne personen"},
    "PauseBody": lambda: {"reason": "personen er på sykehus"},
    "AddStepBody": lambda: {"title": "Følge til fastlege", "owner": "coordinator", "due_at": _future(),
                          "reason": "avtalt med personen"},
    "ResumeBody": lambda: {},
    "UserChange": lambda: {"role": "coordinator", "unit": "voss"},
    "PasswordIn": lambda: {"password": "et-nytt-langt-passord"},
    "AdvanceBody": lambda: {},
    "RecordMilestoneBody": lambda: {"when": _future(10)},
    "RecordConsentBody": lambda: {"scope": ["name", "contact", "threat_assessment"]},
    "AssignCoordinatorBody": lambda: {"coordinator": "koordinator"},
    "SetConditionBody": lambda: {"value": True, "reason": "barn registrert"},
    "RecordRiskBody": lambda: {"level": "high"},
    "CreateHandoverBody": lambda: {"code": "K6"},
    "CloseBody": lambda: {"outcome": "declined", "reason": "takket nei til videre oppfølging"},
    "TransferBody": lambda: {"municipality": "Testkommune", "reason": "flyttet til annen kommune"},
    "BreakGlassBody": lambda: {"reason": "akutt henvendelse utenfor åpningstid"},
    "AcceptBody": lambda: {},
    "DeclineBody": lambda: {"reason": "ikke vår kommune"},
    "CompleteBody": lambda: {"note": "kontakt opprettet"},
    "Ids": lambda: {"ids": [str(uuid.uuid4())]},
    "NameSearch": lambda: {"name": "Tora Oppdiktadottir 0001"},
    "UserIn": lambda: {"username": f"matrise{next(_USERS)}", "role": "coordinator", "unit": "voss",
                       "password": "et-langt-passord"},
    "ReferralIn": lambda: {"unit": "bergen-sentrum", "name": "Testperson Ås", "phone": "+47 400 00 000",
                           "what_happened": "slått av partner", "risk": "high", "contact_agreed": True},
    "ReferralDeclineBody": lambda: {"reason": "bor i en annen kommune"},
    "HoldBody": lambda: {"reason": "klage til Statsforvalteren"},
    "ChildBody": lambda: {"child": {"first_name": "Testbarn", "birth_year": 2018, "school": "Fiktiv skole"}},
    "FhirServiceRequest": lambda: {
        "resourceType": "ServiceRequest", "status": "active", "intent": "order", "priority": "asap",
        "contained": [{"resourceType": "Patient", "id": "p", "name": [{"text": "Testperson Ås"}],
                       "telecom": [{"system": "phone", "value": "+47 400 00 000"}]}],
        "subject": {"reference": "#p"}, "performer": [{"reference": "Organization/bergen-sentrum"}],
        "note": [{"text": "slått av partner"}],
        "extension": [{"url": "https://forlop.no/fhir/StructureDefinition/contact-agreed", "valueBoolean": True}]},
}

# What a fresh case needs before the route's operation is valid (by route name).
PREPARE: dict[str, Callable[[World, str], None]] = {
    "case_resume": lambda w, ref: w.operate(ref, "pause", {"reason": "personen er på sykehus"}),
    "case_advance": lambda w, ref: (w.operate(ref, "steps/K1/complete"), w.operate(ref, "steps/K2/complete")),
    "case_handover": lambda w, ref: w.operate(ref, "consents/police",
                                              {"scope": ["name", "contact", "threat_assessment"]}),
    # the person's copy is the case's own coordinator's (and an administrator's)
    "get_copy": lambda w, ref: w.operate(ref, "coordinator", {"coordinator": "koordinator"}),
    "case_hold_release": lambda w, ref: w.client.post(f"{API}/admin/cases/{ref}/hold", headers=w.auth("admin"),
                                                      json={"reason": "klage til Statsforvalteren"}),
}
# Path parameters that depend on the route (by route name, then parameter).
PATH_VALUES: dict[str, dict[str, str]] = {
    "case_complete": {"code": "K1"},
    "case_skip": {"code": "K2"},
    "case_advance": {"trigger": "start_support"},
    "case_milestone": {"name": "move_out_planned"},
    "case_condition": {"name": "children"},
    "case_consent": {"agency": "police"},
    **{route: {"username": "koordinator4"} for route in ("user_update", "user_deactivate", "user_reactivate",
                                                          "user_password")},
}
COMMON_VALUES = {"pathway_id": "krisesenter", "version": str(load_definition(SHIPPED).version)}  # the live version


@dataclass
class Cell:
    status: int
    expected: str  # "2xx", "401", "403" or "404"
    body: Any

    @property
    def ok(self) -> bool:
        return (200 <= self.status < 300) if self.expected == "2xx" else str(self.status) == self.expected


def _expected(route: RouteInfo, rule: Allow | None, actor: str) -> str:
    if is_public(route):
        return "2xx"
    if actor in ("anonymous", "forged"):
        return "401"
    assert rule is not None
    if ROLE_OF_ACTOR[actor] not in rule.roles:
        return "404" if rule.hide else "403"
    if "{reference}" in route.path and actor == "other_coordinator" and route.name != "break_glass":
        return "404"  # a case of another unit: as if it did not exist (break-glass is how to get in)
    if "{task_id}" in route.path and actor == "nav":
        return "404"  # a task of another agency
    if route.path.startswith(f"{API}/referrals") and actor == "nav":
        return "404"  # only the police's contacts send and follow referrals
    if "{referral_id}" in route.path and actor == "other_coordinator":
        return "404"  # a referral to another unit
    return "2xx"


def _headers(w: World, actor: str) -> dict[str, str]:
    if actor == "forged":
        return {"Authorization": f"Bearer {FORGED}"}
    return w.auth(ACTORS[actor])


def _table(routes: list[RouteInfo], cells: dict[tuple[str, str], Cell]) -> str:
    width = max(len(r.label) for r in routes)
    lines = [" " * width + " | " + " ".join(f"{a[:12]:>12}" for a in ORDER)]
    for r in routes:
        row = []
        for a in ORDER:
            c = cells.get((r.label, a))
            row.append(f"{'-':>12}" if c is None else
                       f"{(str(c.status) + ('' if c.ok else ' !' + c.expected)):>12}")
        lines.append(f"{r.label:<{width}} | " + " ".join(row))
    return "\n".join(lines)


def test_every_route_declares_who_may_call_it(world: World) -> None:
    routes = api_routes(world.app)
    assert len(routes) > 30, "the route table was not read (did FastAPI change how it includes routers?)"
    missing = [r.label for r in routes if allow_of(r) is None and not is_public(r)]
    both = [r.label for r in routes if allow_of(r) is not None and is_public(r)]
    assert not missing, "routes without an Allow rule or x-public flag:\n  " + "\n  ".join(missing)
    assert not both, "routes that are public and also restricted:\n  " + "\n  ".join(both)
    # Nothing is served that the table does not know, nor documented that it does not serve.
    documented = {f"{m.upper()} {p}" for p, ops in world.client.get("/openapi.json").json()["paths"].items()
                  for m in ops}
    assert documented == {r.label for r in routes}


def test_the_authorization_matrix(world: World) -> None:
    w = world
    client = w.lenient
    routes = api_routes(w.app)
    rules = {r.label: allow_of(r) for r in routes}
    unknown_bodies = sorted({r.body_model.__name__ for r in routes
                             if r.body_model is not None and not r.form and r.body_model.__name__ not in BODIES})
    assert not unknown_bodies, f"add a minimal valid body for {unknown_bodies} to BODIES"

    own_tokens: dict[str, str] = {}
    for actor, username in ACTORS.items():
        if username is not None:
            r = w.client.post(f"{API}/auth/tokens", json={"name": "matrise"}, headers=w.auth(username))
            own_tokens[actor] = r.json()["id"]

    cells: dict[tuple[str, str], Cell] = {}
    problems: list[str] = []
    for route in routes:
        reference = task_id = None
        if "{reference}" in route.path:
            reference = w.open_case(synthetic_person())["reference"]
            if route.name in PREPARE:
                PREPARE[route.name](w, reference)
        if "{task_id}" in route.path:
            _, tid = w.handover_case("police")
            task_id = str(tid)
        referral_id = None
        if "{referral_id}" in route.path:  # a referral to bergen-sentrum, waiting in its queue
            referral_id = w.client.post(f"{API}/referrals", json=BODIES["ReferralIn"](),
                                        headers=w.auth("politi")).json()["id"]
        for actor in ORDER:
            values = {**COMMON_VALUES, **PATH_VALUES.get(route.name, {}),
                      "token_id": own_tokens.get(actor, str(uuid.uuid4()))}
            if reference is not None:
                values["reference"] = reference
            if task_id is not None:
                values["task_id"] = task_id
            if referral_id is not None:
                values["referral_id"] = referral_id
            try:
                path = route.path.format(**values)
            except KeyError as exc:
                pytest.fail(f"{route.label}: no value for path parameter {exc}; add one to PATH_VALUES")
            headers = _headers(w, actor)
            if reference is not None:
                headers["If-Match"] = f'"{w.version(reference)}"'
            kwargs: dict[str, Any] = {}
            if route.form:
                kwargs["data"] = {"username": "koordinator", "password": "demo"}
            elif route.body_model is not None:
                kwargs["json"] = BODIES[route.body_model.__name__]()
            if route.label == f"GET {API}/audit/access":
                kwargs["params"] = {"case": reference or w.references()[0]}
            response = client.request(route.method, path, headers=headers, **kwargs)
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            cell = Cell(response.status_code, _expected(route, rules[route.label], actor), body)
            cells[(route.label, actor)] = cell
            if not cell.ok:
                problems.append(f"{route.label} as {actor}: {cell.status} (expected {cell.expected}) {body}")
            elif cell.expected == "401" and response.headers.get("www-authenticate") != "Bearer":
                problems.append(f"{route.label} as {actor}: 401 without 'WWW-Authenticate: Bearer'")
            elif cell.expected == "404" and {k: v for k, v in body.items() if k != "instance"} != HIDDEN_404:
                problems.append(f"{route.label} as {actor}: the 404 differs from a bare 'not found': {body}")
            elif cell.status >= 400 and response.headers.get("content-type") != "application/problem+json":
                problems.append(f"{route.label} as {actor}: {cell.status} is not problem+json")
    print(_table(routes, cells))  # shown by pytest -rP, and with the failure below
    assert not problems, ("authorization matrix (status, '!expected' where wrong):\n" + _table(routes, cells)
                          + "\n\n" + "\n".join(problems))


def test_break_glass_opens_exactly_the_one_case_for_exactly_the_one_user(world: World) -> None:
    """The matrix's exception, pinned: emergency access is per case and per user, never per unit."""
    w = world
    first = w.open_case(synthetic_person())["reference"]
    second = w.open_case(synthetic_person())["reference"]
    other = w.auth("koordinator2")
    assert w.client.get(f"{API}/cases/{first}", headers=other).status_code == 404
    r = w.client.post(f"{API}/cases/{first}/break-glass", json={"reason": "akutt henvendelse på natt"},
                      headers=other)
    assert r.status_code == 200, r.text
    assert w.client.get(f"{API}/cases/{first}", headers=other).status_code == 200
    assert w.client.get(f"{API}/cases/{second}", headers=other).status_code == 404
    assert w.client.get(f"{API}/cases/{first}", headers=w.auth("koordinator3")).status_code == 404
    # and the list of my unit's cases does not grow by it
    listed = w.client.get(f"{API}/cases", params={"status": "all", "limit": 200}, headers=other).json()
    assert first not in {c["reference"] for c in listed["items"]}
    # break-glass for a case that does not exist is a plain 404
    missing = w.client.post(f"{API}/cases/BGO-1999-9999/break-glass", json={"reason": "akutt henvendelse på natt"},
                            headers=other)
    assert missing.status_code == 404
