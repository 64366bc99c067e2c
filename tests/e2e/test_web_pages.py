"""The web pages over HTTP, on SQLite and PostgreSQL: who may open which page, sessions and CSRF, security
headers, the conflict and refusal messages, escaping of what people type, and the bokmål words of every page.
(The browser tests, in test_web_browser.py, walk the same pages in Chromium.)"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from pathway.accounts import authenticate_web, login
from pathway.store.tables import access_t, case_t, token_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import World, page_routes, production_client, signed_in  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "web" / "templates"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def browser(w: World, username: str | None) -> TestClient:
    """A client with a page session (cookie), as a browser has after signing in."""
    client = TestClient(w.app, raise_server_exceptions=True)
    return client if username is None else signed_in(client, username)


def csrf_of(client: TestClient, path: str) -> str:
    return CSRF.search(client.get(path).text).group(1)  # type: ignore[union-attr]


def a_case(w: World, unit: str = "bergen-sentrum") -> str:
    with w.core.engine.connect() as conn:
        return conn.execute(sa.select(case_t.c.reference).where(case_t.c.unit == unit, case_t.c.closed_at.is_(None))
                            .order_by(case_t.c.reference)).scalars().first()  # type: ignore[return-value]


# -- who may open which page -------------------------------------------------------------------------------------

PAGE_OWNERS = {"/cases": "coordinator", "/cases/new": "coordinator", "/cases/{reference}": "coordinator",
               "/tasks": "partner", "/reports": "manager", "/reports/timeliness.csv": "manager",
               "/reports/timeliness.xlsx": "manager",
               "/admin/users": "admin", "/admin/definitions": "admin", "/admin/access": "admin",
               "/admin/retention": "admin",
               "/inbox": "any", "/": "any", "/calendar": "coordinator",
               "/referrals": "partner", "/referrals/queue": "coordinator", "/cases/{reference}/copy": "admin"}
# Pages that a second role opens for its own cases: the person's copy, the case's own coordinator (a_case's, seeded).
ALSO_OWNED_BY = {"/cases/{reference}/copy": "coordinator"}
USERS = {"koordinator": "coordinator", "politi": "partner", "leder": "manager", "admin": "admin", None: None}


def test_every_page_is_opened_by_its_role_only_and_others_find_nothing(world: World) -> None:
    # A calendar feed needs no session: its address is the credential (test_calendar_feed.py).
    # Signing in through an identity provider needs no session either (test_oidc_signin.py).
    public = ("/login", "/language", "/calendar/{token}.ics", "/login/oidc/{provider}", "/login/oidc/{provider}/callback")
    pages = [p for p in page_routes(world.app, "GET") if p not in public]
    assert set(pages) == set(PAGE_OWNERS), "a page without a row in PAGE_OWNERS: say who may open it"
    reference = a_case(world)
    wrong = []
    for username, role in USERS.items():
        client = browser(world, username)
        for path in pages:
            r = client.get(path.format(reference=reference), follow_redirects=False)
            owner = PAGE_OWNERS[path]
            if role is None:
                expected = 303  # to the login page, and back afterwards
            elif owner in ("any", role) or ALSO_OWNED_BY.get(path) == role:
                expected = 303 if path == "/" else 200
            else:
                expected = 404  # not 403: a page of another role does not exist for you
            if r.status_code != expected:
                wrong.append(f"{username} GET {path}: {r.status_code}, expected {expected}")
            if role is None:
                assert r.headers["location"].startswith("/login?next=")
    assert not wrong, "\n".join(wrong)


def test_a_coordinator_of_another_unit_cannot_open_the_case_page(world: World) -> None:
    other = browser(world, "koordinator2")
    r = other.get(f"/cases/{a_case(world)}")
    assert r.status_code == 404 and "Fant ikke siden" in r.text


def test_reading_a_case_page_is_in_the_access_log(world: World) -> None:
    reference = a_case(world)
    browser(world, "koordinator").get(f"/cases/{reference}")
    with world.core.engine.connect() as conn:
        actions = set(conn.execute(sa.select(access_t.c.action).where(
            access_t.c.case_reference == reference, access_t.c.username == "koordinator")).scalars())
    assert "case.read" in actions


# -- sessions, CSRF, headers --------------------------------------------------------------------------------------


def test_the_session_cookie_is_httponly_and_strict_and_signing_out_revokes_it(world: World) -> None:
    client = TestClient(world.app)
    page = client.get("/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = client.post("/login", data={"username": "koordinator", "password": "demo", "nonce": nonce},
                    follow_redirects=False)
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("forlop_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Max-Age" not in cookie
    assert "Secure" not in cookie  # the test environment is plain http; production sets it (next test)
    session = client.cookies.get("forlop_session")
    assert client.get("/cases").status_code == 200
    client.post("/logout", data={"csrf": csrf_of(client, "/cases")}, follow_redirects=False)
    stolen = TestClient(world.app, cookies={"forlop_session": session})  # a copy of the cookie is now worthless
    assert stolen.get("/cases", follow_redirects=False).status_code == 303


def test_cookies_are_secure_outside_development(world: World) -> None:
    from api.web.session import secure_cookies

    assert secure_cookies(world.core) is False
    production = world.core.settings.model_copy(update={"env": "production"})
    assert secure_cookies(type(world.core)(settings=production, engine=world.core.engine,
                                           catalog=world.core.catalog)) is True


def test_a_session_ends_after_the_idle_time_and_use_keeps_it_alive(world: World) -> None:
    start = datetime.now(timezone.utc)
    token, _, _ = login(world.core.engine, "koordinator", "demo", kind="web", ttl=timedelta(minutes=30), now=start,
                        slow=False)
    assert authenticate_web(world.core.engine, token, now=start + timedelta(minutes=20)) is not None  # used: pushed on
    assert authenticate_web(world.core.engine, token, now=start + timedelta(minutes=45)) is not None
    assert authenticate_web(world.core.engine, token, now=start + timedelta(minutes=80)) is None  # 35 min unused
    # A page session is not a bearer token for the API, nor an API token a page session.
    assert world.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    api_token = world.login("koordinator")
    assert authenticate_web(world.core.engine, api_token) is None
    with world.core.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(token_t).where(token_t.c.kind == "web")).scalar()


def test_every_form_without_the_csrf_token_is_refused_and_changes_nothing(world: World) -> None:
    posts = [p for p in page_routes(world.app, "POST") if p != "/login"]
    assert len(posts) >= 7, posts
    reference = a_case(world)
    before = world.version(reference)
    users = {"/tasks/{task_id}/{move}": "politi", "/admin/users": "admin", "/admin/definitions/validate": "admin",
             "/referrals": "politi"}
    for path in posts:
        client = browser(world, users.get(path, "koordinator"))
        target = path.format(reference=reference, action="pause", task_id="00000000-0000-0000-0000-000000000000",
                             move="accept", referral_id="00000000-0000-0000-0000-000000000000", decision="accept")
        for form in ({}, {"csrf": "forged"}):
            r = client.post(target, data={**form, "reason": "x", "version": str(before)}, follow_redirects=False)
            assert r.status_code == 403, f"{path} {form}: {r.status_code}"
    assert world.version(reference) == before


def test_the_login_form_needs_its_own_nonce_and_never_redirects_off_site(world: World) -> None:
    client = TestClient(world.app)
    r = client.post("/login", data={"username": "koordinator", "password": "demo", "nonce": "guessed"})
    assert r.status_code == 403
    page = client.get("/login", params={"next": "//evil.example/steal"})
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = client.post("/login", data={"username": "koordinator", "password": "demo", "nonce": nonce,
                                    "next": "//evil.example/steal"}, follow_redirects=False)
    assert r.headers["location"] == "/cases"
    wrong = client.get("/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', wrong.text).group(1)  # type: ignore[union-attr]
    r = client.post("/login", data={"username": "koordinator", "password": "feil", "nonce": nonce})
    assert r.status_code == 401 and "Feil brukernavn eller passord" in r.text


def test_every_page_carries_the_security_headers_and_case_pages_are_not_cached(world: World) -> None:
    client = browser(world, "koordinator")
    for path in ("/login", "/cases", f"/cases/{a_case(world)}", "/inbox", "/api/v1/me", "/cases/NO-SUCH"):
        r = client.get(path)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp, path
        assert r.headers["referrer-policy"] == "no-referrer", path
        assert r.headers["cache-control"] == "no-store", path
        assert r.headers["x-content-type-options"] == "nosniff", path
    for page in TEMPLATES.glob("*.html"):
        html = page.read_text()
        assert not re.search(r"<script|\son[a-z]+=|style=", html), f"{page.name}: inline script or style"
    static = client.get("/static/forlop.css")
    assert static.status_code == 200 and "no-store" not in static.headers.get("cache-control", "")


def test_in_production_every_answer_tells_the_browser_to_use_https_only(world: World) -> None:
    production = production_client(world)
    for path in ("/login", "/api/v1/me", "/static/forlop.css", "/cases/NO-SUCH"):
        assert production.get(path).headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert "strict-transport-security" not in browser(world, None).get("/login").headers  # plain http in tests


# -- what the case page says ---------------------------------------------------------------------------------------


def _post_op(client: TestClient, reference: str, action: str, data: dict[str, str]) -> object:
    return client.post(f"/cases/{reference}/do/{action}", data={"csrf": csrf_of(client, f"/cases/{reference}"),
                                                                **data}, follow_redirects=False)


def test_a_stale_version_shows_the_conflict_message_and_saves_nothing(world: World) -> None:
    client = browser(world, "koordinator")
    reference = world.open_case()["reference"]
    stale = world.version(reference)
    world.operate(reference, "pause", {"reason": "venter på tolk"})
    r = _post_op(client, reference, "complete", {"version": str(stale), "target": "K1", "note": "gjort"})
    assert r.status_code == 409  # type: ignore[attr-defined]
    assert "Noen andre endret saken mens du arbeidet med den" in r.text  # type: ignore[attr-defined]
    assert f'href="/cases/{reference}"' in r.text  # type: ignore[attr-defined]  (the reload link)
    assert world.version(reference) == stale + 1


def test_a_refused_operation_says_why_and_what_is_allowed_and_a_bad_form_says_where(world: World) -> None:
    client = browser(world, "koordinator")
    reference = world.open_case()["reference"]
    version = world.version(reference)
    refused = _post_op(client, reference, "advance", {"version": str(version), "target": "move_out"})
    assert refused.status_code == 409 and "Kunne ikke utføres" in refused.text  # type: ignore[attr-defined]
    assert "Tillatt nå" in refused.text  # type: ignore[attr-defined]
    invalid = _post_op(client, reference, "pause", {"version": str(version)})  # the reason is required
    assert invalid.status_code == 422 and "Skjemaet har feil" in invalid.text  # type: ignore[attr-defined]
    unconfirmed = _post_op(client, reference, "close", {"version": str(version), "outcome": "declined"})
    assert unconfirmed.status_code == 422  # type: ignore[attr-defined]
    assert world.version(reference) == version
    done = _post_op(client, reference, "pause", {"version": str(version), "reason": "på sykehus"})
    assert done.status_code == 303 and world.version(reference) == version + 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("typed", ["<script>alert(1)</script>", "{{7*7}}", "<img src=x onerror=alert(1)>",
                                   "'; DROP TABLE pathway_case;--"])
def test_what_people_type_is_shown_as_text_never_run(world: World, typed: str) -> None:
    client = browser(world, "koordinator")
    reference = world.open_case()["reference"]
    r = _post_op(client, reference, "pause", {"version": str(world.version(reference)), "reason": typed})
    assert r.status_code == 303  # type: ignore[attr-defined]
    page = client.get(f"/cases/{reference}").text
    assert typed not in page or typed == "{{7*7}}"  # markup is escaped...
    assert ("&lt;" in page) if "<" in typed else True
    if typed == "{{7*7}}":
        assert "{{7*7}}" in page and ">49<" not in page  # ...and a template expression is not evaluated


# -- words ---------------------------------------------------------------------------------------------------------


def test_the_report_page_says_how_fresh_its_figures_are(world: World) -> None:
    from api.web.render import local
    from pathway.scheduler import run_report_snapshots
    from pathway.store.tables import snapshot_t

    now = datetime.now(timezone.utc)
    # A snapshot from the background job, 5 minutes old (of the same day, or the default span would differ).
    as_of = max(now - timedelta(minutes=5), now.replace(hour=0, minute=0, second=0, microsecond=0))
    run_report_snapshots(world.core, now=as_of)
    try:
        page = browser(world, "leder").get("/reports")
        assert page.status_code == 200
        assert re.search(rf"Tall per <time [^>]*>{re.escape(local(as_of, 'nb'))}</time>", page.text), page.text
        chosen = browser(world, "leder").get("/reports", params={"period": "month", "scope": "unit",
                                                                 "start": "2026-01-01", "end": "2026-11-27"})
        # a chosen span is answered from the same stored figures (one block per tertial), and says so
        assert re.search(rf"Tall per <time [^>]*>{re.escape(local(as_of, 'nb'))}</time>", chosen.text)
    finally:
        with world.core.engine.begin() as conn:
            conn.execute(snapshot_t.delete())
