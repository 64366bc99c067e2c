"""Bearer tokens through HTTP: personal tokens only from a password sign-in, with a capped lifetime and scopes that
every route enforces; signing out of the API; revoking a token revokes what it minted, at any depth; and sign-in
attempts limited per client and per name, on the token endpoint (429 problem) and the sign-in page (bokmål)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from itertools import count
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import scope_needed
from pathway import accounts
from pathway.accounts import PASSWORD, SCOPES, Grant, TokenNotAllowed
from pathway.bootstrap import Forlop
from pathway.store.engine import WRITE
from pathway.store.tables import token_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, allow_of, api_routes, is_public  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

USER_OF_ROLE = {"coordinator": "koordinator", "partner": "politi", "manager": "leder", "admin": "admin"}
_ADDRESSES = count(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def session(w: World, username: str) -> tuple[str, uuid.UUID]:
    """A fresh API session of ``username``, as a sign-in makes it (without one: the tests that sign in count
    their attempts, and these would add to them)."""
    with w.core.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        user = accounts.active_user(conn, username)
        assert user is not None
        token, token_id, _ = accounts.issue_token(conn, user.id, "session", now=datetime.now(timezone.utc),
                                                  ttl=accounts.SESSION_TTL)
    return token, token_id


def personal(w: World, session_token: str, **body: Any) -> dict[str, Any]:
    r = w.client.post(f"{API}/auth/tokens", json={"name": "integrasjon", **body}, headers=bearer(session_token))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def app_with(w: World, **settings: Any) -> TestClient:
    """The same database under an app with other settings, seen from a client address of its own."""
    core = Forlop(settings=w.core.settings.model_copy(update=settings), engine=w.core.engine, catalog=w.core.catalog)
    return TestClient(create_app(core), client=(f"10.99.0.{next(_ADDRESSES)}", 50000))


def refused_for_scope(r: Any, scope: str) -> bool:
    return r.status_code == 403 and r.headers.get("www-authenticate") == \
        f'Bearer error="insufficient_scope", scope="{scope}"'


# -- making personal tokens ------------------------------------------------------------------------------------


def test_a_personal_token_is_made_only_from_a_password_sign_in_and_cannot_mint(world: World) -> None:
    w = world
    token, session_id = session(w, "koordinator")
    made = personal(w, token, scopes=["write", "read"])
    assert made["scopes"] == ["read", "write"] and made["token"].startswith("fp_")
    with w.core.engine.connect() as conn:
        assert conn.execute(sa.select(token_t.c.parent_id).where(token_t.c.id == uuid.UUID(made["id"]))).scalar() \
            == session_id
    p = bearer(made["token"])
    minted = w.client.post(f"{API}/auth/tokens", json={"name": "avlegger"}, headers=p)
    assert refused_for_scope(minted, PASSWORD), minted.text
    assert minted.headers["content-type"] == "application/problem+json"
    assert "innlogging med passord" in minted.json()["detail"]  # bokmål unless the client asks otherwise
    # nor may it list or revoke tokens
    assert refused_for_scope(w.client.get(f"{API}/auth/tokens", headers=p), PASSWORD)
    assert refused_for_scope(w.client.delete(f"{API}/auth/tokens/{made['id']}", headers=p), PASSWORD)
    assert w.client.get(f"{API}/me", headers=p).status_code == 200  # the token still works
    # and the rule holds below the API too
    grant = accounts.bearer(w.core.engine, made["token"])
    assert isinstance(grant, Grant) and grant.kind == "personal"
    with pytest.raises(TokenNotAllowed):
        accounts.issue_personal_token(w.core.engine, grant, name="avlegger", days=None, max_days=90)
    with w.core.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(token_t)
                            .where(token_t.c.parent_id == uuid.UUID(made["id"]))).scalar() == 0


def test_a_personal_token_lives_at_most_the_settings_days(world: World) -> None:
    w = world
    token, _ = session(w, "koordinator")
    by_default = personal(w, token)
    assert by_default["scopes"] == ["read", "tasks"]  # no case changes unless asked for
    listed = {t["id"]: t for t in w.client.get(f"{API}/auth/tokens", headers=bearer(token)).json()}
    made = listed[by_default["id"]]
    lifetime = datetime.fromisoformat(made["expires_at"]) - datetime.fromisoformat(made["created_at"])
    assert lifetime == timedelta(days=90)
    too_long = w.client.post(f"{API}/auth/tokens", json={"name": "lenge", "days": 91}, headers=bearer(token))
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["loc"] == ["body", "days"]
    week = app_with(w, personal_token_max_days=7)
    short = week.post(f"{API}/auth/tokens", json={"name": "kort"}, headers=bearer(token)).json()
    created = {t["id"]: t for t in week.get(f"{API}/auth/tokens", headers=bearer(token)).json()}[short["id"]]
    assert datetime.fromisoformat(created["expires_at"]) - datetime.fromisoformat(created["created_at"]) \
        == timedelta(days=7)
    assert week.post(f"{API}/auth/tokens", json={"name": "kort", "days": 8}, headers=bearer(token)).status_code == 422
    assert w.client.post(f"{API}/auth/tokens", json={"name": "x", "scopes": ["admin"]},
                         headers=bearer(token)).status_code == 422


def test_a_lower_cap_holds_for_the_personal_tokens_made_before_it(world: World) -> None:
    w = world
    token, _ = session(w, "koordinator")
    grant = accounts.bearer(w.core.engine, token)
    assert grant is not None
    made_at = datetime.now(timezone.utc) - timedelta(days=2)
    old, _, _, _ = accounts.issue_personal_token(w.core.engine, grant, name="gammel", days=90, max_days=90,
                                                 now=made_at)
    assert w.client.get(f"{API}/me", headers=bearer(old)).status_code == 200
    assert app_with(w, personal_token_max_days=3).get(f"{API}/me", headers=bearer(old)).status_code == 200
    assert app_with(w, personal_token_max_days=1).get(f"{API}/me", headers=bearer(old)).status_code == 401
    assert app_with(w, personal_token_max_days=1).get(f"{API}/me", headers=bearer(token)).status_code == 200


# -- scopes ------------------------------------------------------------------------------------------------------


def _path(template: str) -> str:
    values = {"reference": "BGO-1999-0001", "task_id": str(uuid.uuid4()), "token_id": str(uuid.uuid4()),
              "pathway_id": "krisesenter", "version": "1"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), template)


def test_scopes_are_enforced_on_every_route_a_personal_token_can_reach(world: World) -> None:
    """Every route, with a token of each single scope, as a user whose role the route allows: refused for its
    scope exactly when the one rule (``scope_needed``) says the token lacks it; a session never is. (Requests
    carry no body and name nothing that exists, so nothing is changed.)"""
    w = world
    sessions = {role: session(w, username)[0] for role, username in USER_OF_ROLE.items()}
    tokens = {(role, scope): personal(w, sessions[role], scopes=[scope])["token"]
              for role in USER_OF_ROLE for scope in SCOPES}
    wrong: list[str] = []
    checked = 0
    for route in api_routes(w.app):
        rule = allow_of(route)
        if is_public(route) or rule is None:
            continue
        role = next(r for r in USER_OF_ROLE if r in rule.roles)
        needed = scope_needed(route.method, route.path)
        path = _path(route.path)
        for scope in SCOPES:
            r = w.lenient.request(route.method, path, headers=bearer(tokens[(role, scope)]))
            should = needed is not None and needed != scope
            if refused_for_scope(r, str(needed)) != should or r.status_code == 401:
                wrong.append(f"{route.label} with a '{scope}' token ({role}): {r.status_code} {r.text[:120]}")
            checked += 1
        r = w.lenient.request(route.method, path, headers=bearer(sessions[role]))
        if r.status_code in (401, 403) and "insufficient_scope" in r.headers.get("www-authenticate", ""):
            wrong.append(f"{route.label} refused a session: {r.text[:120]}")
    assert checked > 90 and not wrong, "\n".join(wrong)


def test_the_rule_reads_cases_with_read_changes_them_with_write_and_tasks_with_tasks() -> None:
    assert scope_needed("GET", f"{API}/cases/{{reference}}") == "read"
    assert scope_needed("POST", f"{API}/cases/search") == "read"  # the name goes in a body, never a URL
    assert scope_needed("POST", f"{API}/cases/{{reference}}/steps/{{code}}/complete") == "write"
    assert scope_needed("PUT", f"{API}/cases/{{reference}}/person") == "write"
    assert scope_needed("POST", f"{API}/users") == "write"
    assert scope_needed("GET", f"{API}/tasks") == scope_needed("POST", f"{API}/tasks/{{task_id}}/accept") == "tasks"
    assert scope_needed("POST", f"{API}/auth/tokens") == scope_needed("DELETE", f"{API}/auth/tokens/{{token_id}}") \
        == PASSWORD
    assert scope_needed("GET", f"{API}/me") is None


def test_a_read_token_reads_a_case_and_a_write_token_changes_it(world: World) -> None:
    w = world
    token, _ = session(w, "koordinator")
    reference = w.open_case()["reference"]
    read, write = (personal(w, token, scopes=[s])["token"] for s in ("read", "write"))
    assert w.client.get(f"{API}/cases/{reference}", headers=bearer(read)).status_code == 200
    assert w.client.post(f"{API}/cases/search", json={"name": "Ingen Slik"}, headers=bearer(read)).status_code == 200
    complete = f"{API}/cases/{reference}/steps/K1/complete"
    version = {"If-Match": f'"{w.version(reference)}"'}
    assert refused_for_scope(w.client.post(complete, json={}, headers={**bearer(read), **version}), "write")
    assert w.version(reference) == int(version["If-Match"].strip('"'))  # nothing changed
    assert refused_for_scope(w.client.get(f"{API}/cases/{reference}", headers=bearer(write)), "read")
    assert w.client.post(complete, json={}, headers={**bearer(write), **version}).status_code == 200


def test_a_partner_token_with_tasks_works_the_tasks_and_reads_nothing_else(world: World) -> None:
    w = world
    token, _ = session(w, "politi")
    tasks = personal(w, token, scopes=["tasks"])["token"]
    assert w.client.get(f"{API}/tasks", headers=bearer(tasks)).status_code == 200
    assert refused_for_scope(w.client.get(f"{API}/inbox", headers=bearer(tasks)), "read")
    read = personal(w, token, scopes=["read"])["token"]
    assert refused_for_scope(w.client.get(f"{API}/tasks", headers=bearer(read)), "tasks")


def test_a_personal_token_from_before_scopes_only_says_whose_it_is(world: World) -> None:
    w = world
    user = accounts.authenticate(w.core.engine, session(w, "koordinator")[0])
    assert user is not None
    with w.core.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        old, _, _ = accounts.issue_token(conn, user.id, "personal", name="gammel", now=datetime.now(timezone.utc),
                                         ttl=timedelta(days=1))
    assert w.client.get(f"{API}/me", headers=bearer(old)).json()["scopes"] == []
    assert refused_for_scope(w.client.get(f"{API}/cases", headers=bearer(old)), "read")


# -- signing out and revoking ------------------------------------------------------------------------------------


def test_signing_out_of_the_api_revokes_the_session_and_the_tokens_it_made(world: World) -> None:
    w = world
    client = app_with(w)
    signed = client.post(f"{API}/auth/token", data={"username": "koordinator", "password": "demo"}).json()
    s = bearer(signed["access_token"])
    me = client.get(f"{API}/me", headers=s).json()
    assert me["token_id"] == signed["token_id"] and me["token_kind"] == "session" and me["scopes"] is None
    minted = [personal(w, signed["access_token"], scopes=["read"])["token"] for _ in range(2)]
    other, _ = session(w, "koordinator")  # another sign-in of the same user, and its token
    kept = personal(w, other, scopes=["read"])["token"]
    assert client.delete(f"{API}/auth/tokens/{signed['token_id']}", headers=s).status_code == 204
    for token in (signed["access_token"], *minted):
        assert client.get(f"{API}/me", headers=bearer(token)).status_code == 401
    for token in (other, kept):
        assert client.get(f"{API}/me", headers=bearer(token)).status_code == 200
    # revoking a personal token leaves the session that made it
    kept_id = client.get(f"{API}/me", headers=bearer(kept)).json()["token_id"]
    assert client.delete(f"{API}/auth/tokens/{kept_id}", headers=bearer(other)).status_code == 204
    assert client.get(f"{API}/me", headers=bearer(kept)).status_code == 401
    assert client.get(f"{API}/me", headers=bearer(other)).status_code == 200
    # someone else's session cannot be ended by another user
    nav, _ = session(w, "nav")
    other_id = client.get(f"{API}/me", headers=bearer(other)).json()["token_id"]
    assert client.delete(f"{API}/auth/tokens/{other_id}", headers=bearer(nav)).status_code == 404
    assert client.get(f"{API}/me", headers=bearer(other)).status_code == 200


def test_revoking_a_token_revokes_what_it_minted_at_any_depth(world: World) -> None:
    """A chain as old releases could make it (a personal token minting another): revoking its first link ends
    every token below it, and nothing beside it."""
    w = world
    user = accounts.authenticate(w.core.engine, session(w, "koordinator")[0])
    assert user is not None
    now = datetime.now(timezone.utc)
    made: dict[str, tuple[str, uuid.UUID]] = {}
    with w.core.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        for name, parent in (("root", None), ("a", "root"), ("b", "a"), ("c", "b"), ("a2", "root"),
                             ("other", None), ("other.a", "other")):
            secret, token_id, _ = accounts.issue_token(
                conn, user.id, "session" if parent is None else "personal", name=name, now=now, ttl=timedelta(days=1),
                parent=made[parent][1] if parent else None, scopes=None if parent is None else ["read"])
            made[name] = (secret, token_id)
    assert accounts.revoke_token(w.core.engine, user, made["root"][1])
    alive = {name for name, (secret, _) in made.items() if accounts.bearer(w.core.engine, secret) is not None}
    assert alive == {"other", "other.a"}
    assert not accounts.revoke_token(w.core.engine, user, made["root"][1])  # already revoked: 404 in the API


# -- sign-in attempts --------------------------------------------------------------------------------------------


def test_the_token_endpoint_answers_429_with_retry_after_beyond_the_limit_on_a_name(world: World) -> None:
    w = world
    client = app_with(w, login_attempts_per_name=2)
    name = f"ukjent{uuid.uuid4().hex[:6]}"
    answers = [client.post(f"{API}/auth/token", data={"username": name, "password": "feil"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 429]
    limited = answers[-1]
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["type"] == "/problems/too-many-attempts"
    assert 1 <= int(limited.headers["retry-after"]) <= 300 and limited.json()["retry_after"] == \
        int(limited.headers["retry-after"])
    # the sign-in page counts in the same place, and refuses in bokmål
    page = client.get("/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = client.post("/login", data={"username": name, "password": "feil", "nonce": nonce}, follow_redirects=False)
    assert r.status_code == 429 and r.headers["retry-after"]
    assert re.search(r"For mange innloggingsforsøk\. Prøv igjen om (et minutt|\d+ minutter)\.", r.text), r.text


def test_the_client_limit_refuses_even_the_right_password_and_the_page_too(world: World) -> None:
    w = world
    client = app_with(w, login_attempts_per_client=3)
    for i in range(3):
        assert client.post(f"{API}/auth/token", data={"username": f"ingen{i}", "password": "x"}).status_code == 401
    right = client.post(f"{API}/auth/token", data={"username": "koordinator", "password": "demo"})
    assert right.status_code == 429 and "access_token" not in right.text
    page = client.get("/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = client.post("/login", data={"username": "koordinator", "password": "demo", "nonce": nonce},
                    follow_redirects=False)
    assert r.status_code == 429 and "forlop_session" not in r.headers.get("set-cookie", "")
    # another client address is not held up
    assert app_with(w).post(f"{API}/auth/token", data={"username": "koordinator", "password": "demo"}) \
        .status_code == 200
