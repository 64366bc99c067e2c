"""Administrators manage users, over the API and in the pages, on SQLite and PostgreSQL: a leaver is signed out
everywhere at once, a role or unit change takes effect at the next request, a new password replaces the old, units
and agencies come from lists, an administrator cannot lock the administrators out, and every change is in the access
log, which can be read by date as well as by case and user."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from pathway.accounts import WEB_IDLE, LoginFailed, login
from pathway.store.tables import access_t, case_t

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

PASSWORD = "et-langt-syntetisk-passord"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def new_user(w: World, role: str = "coordinator", **placement: str) -> str:
    """A user of this test alone, made by the administrator over the API."""
    name = f"bruker-{uuid.uuid4().hex[:8]}"
    if role in ("coordinator", "manager"):
        placement.setdefault("unit", "voss")
    r = w.client.post(f"{API}/users", json={"username": name, "role": role, "password": PASSWORD, **placement},
                      headers=w.auth("admin"))
    assert r.status_code == 201, r.text
    return name


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Sessions are made as the sign-in makes them, but directly: the sign-in route counts attempts per client address,
# and this module signs in more often than a person would.


def session_of(w: World, name: str, password: str = PASSWORD) -> str:
    """An API session token of the user (as ``POST /auth/token`` gives)."""
    return login(w.core.engine, name, password, slow=False)[0]


def signed_in(w: World, name: str, password: str = PASSWORD) -> TestClient:
    """A browser with the user's page session (as signing in at /login leaves it)."""
    token = login(w.core.engine, name, password, kind="web", ttl=WEB_IDLE, slow=False)[0]
    return TestClient(w.app, cookies={"forlop_session": token})


_ADMIN_PAGES: dict[int, TestClient] = {}


def admin_page(w: World) -> TestClient:
    if id(w) not in _ADMIN_PAGES:
        _ADMIN_PAGES[id(w)] = signed_in(w, "admin", "demo")
    return _ADMIN_PAGES[id(w)]


def post_form(client: TestClient, path: str, data: dict[str, str]) -> Any:
    csrf = CSRF.search(client.get("/admin/users").text).group(1)  # type: ignore[union-attr]
    return client.post(path, data={"csrf": csrf, **data}, follow_redirects=False)


def log_of(w: World, name: str) -> list[dict[str, Any]]:
    r = w.client.get(f"{API}/audit/access", params={"user": name}, headers=w.auth("admin"))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


# -- a leaver ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["api", "page"])
def test_a_deactivated_user_is_signed_out_of_every_session_and_token_at_once(world: World, by: str) -> None:
    w = world
    name = new_user(w)
    session = session_of(w, name)
    personal = w.client.post(f"{API}/auth/tokens", json={"name": "fagsystem"}, headers=bearer(session)).json()["token"]
    page = signed_in(w, name)
    assert w.client.get(f"{API}/me", headers=bearer(session)).status_code == 200
    assert w.client.get(f"{API}/me", headers=bearer(personal)).status_code == 200
    assert page.get("/cases").status_code == 200

    if by == "api":
        r = w.client.post(f"{API}/users/{name}/deactivate", headers=w.auth("admin"))
        assert r.status_code == 200 and r.json()["active"] is False, r.text
    else:
        r = post_form(admin_page(w), "/admin/users/deactivate", {"username": name})
        assert r.status_code == 303 and r.headers["location"] == "/admin/users?done=user.deactivate"

    for token in (session, personal):
        assert w.client.get(f"{API}/me", headers=bearer(token)).status_code == 401
    gone = page.get("/cases", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
    with pytest.raises(LoginFailed):
        session_of(w, name)

    # Reactivated, the user signs in again; what they held before stays ended.
    assert w.client.post(f"{API}/users/{name}/reactivate", headers=w.auth("admin")).json()["active"] is True
    assert w.client.get(f"{API}/me", headers=bearer(session_of(w, name))).status_code == 200
    for token in (session, personal):
        assert w.client.get(f"{API}/me", headers=bearer(token)).status_code == 401
    assert page.get("/cases", follow_redirects=False).status_code == 303


def test_an_administrator_cannot_deactivate_themself_nor_leave_no_active_administrator(world: World) -> None:
    w = world
    mine = w.client.post(f"{API}/users/admin/deactivate", headers=w.auth("admin"))
    assert mine.status_code == 409 and mine.headers["content-type"] == "application/problem+json"
    assert "kan ikke deaktivere seg selv" in mine.json()["detail"]
    refused = post_form(admin_page(w), "/admin/users/deactivate", {"username": "admin"})
    assert refused.status_code == 409 and "Du kan ikke deaktivere deg selv" in refused.text

    second = new_user(w, "admin")
    as_second = bearer(session_of(w, second))
    try:
        assert w.client.post(f"{API}/users/admin/deactivate", headers=as_second).status_code == 200
        # Now the second is the last active administrator: neither demoted nor (by itself) deactivated.
        demoted = w.client.patch(f"{API}/users/{second}", json={"role": "coordinator", "unit": "voss"},
                                 headers=as_second)
        assert demoted.status_code == 409 and "siste aktive administratoren" in demoted.json()["detail"]
        assert w.client.post(f"{API}/users/{second}/deactivate", headers=as_second).status_code == 409
        assert w.client.get(f"{API}/me", headers=as_second).json()["role"] == "admin"
    finally:
        assert w.client.post(f"{API}/users/admin/reactivate", headers=as_second).status_code == 200
        w.tokens.pop("admin", None)  # its sessions ended with the deactivation
        _ADMIN_PAGES.pop(id(w), None)
    assert w.client.post(f"{API}/users/{second}/deactivate", headers=w.auth("admin")).status_code == 200


def test_deactivating_or_changing_a_user_that_does_not_exist_is_a_plain_404(world: World) -> None:
    w = world
    for r in (w.client.post(f"{API}/users/ingen-slik/deactivate", headers=w.auth("admin")),
              w.client.patch(f"{API}/users/ingen-slik", json={"role": "admin"}, headers=w.auth("admin"))):
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    page = post_form(admin_page(w), "/admin/users/reactivate", {"username": "ingen-slik"})
    assert page.status_code == 404 and "Brukeren finnes ikke" in page.text


# -- role, unit, agency, password ---------------------------------------------------------------------------------


def test_a_role_or_unit_change_takes_effect_at_the_users_next_request(world: World) -> None:
    w = world
    name = new_user(w, unit="voss")
    token = bearer(session_of(w, name))
    with w.core.engine.connect() as conn:
        reference = conn.execute(sa.select(case_t.c.reference).where(case_t.c.unit == "bergen-sentrum")
                                 .limit(1)).scalar_one()
    assert w.client.get(f"{API}/cases/{reference}", headers=token).status_code == 404  # another unit's case

    moved = w.client.patch(f"{API}/users/{name}", json={"role": "coordinator", "unit": "bergen-sentrum"},
                           headers=w.auth("admin"))
    assert moved.status_code == 200 and moved.json()["unit"] == "bergen-sentrum", moved.text
    assert w.client.get(f"{API}/me", headers=token).json()["unit"] == "bergen-sentrum"
    assert w.client.get(f"{API}/cases/{reference}", headers=token).status_code == 200

    page = signed_in(w, name)
    form = post_form(admin_page(w), "/admin/users/update", {"username": name, "role": "partner", "agency": "police",
                                                            "unit": "bergen-sentrum"})
    assert form.status_code == 303, form.text
    me = w.client.get(f"{API}/me", headers=token).json()
    assert (me["role"], me["unit"], me["agency"]) == ("partner", None, "police")  # a partner keeps no unit
    assert w.client.get(f"{API}/cases/{reference}", headers=token).status_code == 404
    assert w.client.get(f"{API}/tasks", headers=token).status_code == 200
    assert page.get("/cases").status_code == 404 and page.get("/tasks").status_code == 200


def test_a_new_password_lets_the_user_in_and_the_old_one_no_longer(world: World) -> None:
    w = world
    name = new_user(w)
    before = session_of(w, name)
    r = post_form(admin_page(w), "/admin/users/password", {"username": name, "password": "et-helt-nytt-passord"})
    assert r.status_code == 303 and r.headers["location"] == "/admin/users?done=user.password"
    assert w.client.post(f"{API}/auth/token", data={"username": name, "password": PASSWORD}).status_code == 401
    signed = w.client.post(f"{API}/auth/token", data={"username": name, "password": "et-helt-nytt-passord"})
    assert signed.status_code == 200
    assert w.client.get(f"{API}/me", headers=bearer(signed.json()["access_token"])).status_code == 200
    assert w.client.get(f"{API}/me", headers=bearer(before)).status_code == 401  # its sessions ended with it

    again = w.client.post(f"{API}/users/{name}/password", json={"password": "tredje-passordet"},
                          headers=w.auth("admin"))
    assert again.status_code == 200
    assert w.client.get(f"{API}/me", headers=bearer(session_of(w, name, "tredje-passordet"))).status_code == 200
    short = w.client.post(f"{API}/users/{name}/password", json={"password": "kort"}, headers=w.auth("admin"))
    assert short.status_code == 422 and short.headers["content-type"] == "application/problem+json"


def test_a_unit_or_agency_outside_the_lists_is_refused_naming_the_field(world: World) -> None:
    w = world
    admin = w.auth("admin")
    typed = w.client.post(f"{API}/users", json={"username": f"fri-{uuid.uuid4().hex[:6]}", "role": "coordinator",
                                                "unit": "bergen-sentrum ", "password": PASSWORD}, headers=admin)
    assert typed.status_code == 422 and typed.headers["content-type"] == "application/problem+json"
    assert typed.json()["errors"][0]["loc"] == ["body", "unit"]
    name = new_user(w)
    for change, field in (({"role": "coordinator", "unit": "Bergen sentrum"}, "unit"),
                          ({"role": "partner", "agency": "fbi"}, "agency"),
                          ({"role": "partner"}, "agency"), ({"role": "manager"}, "unit")):
        r = w.client.patch(f"{API}/users/{name}", json=change, headers=admin)
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", field], (change, r.text)
    assert w.client.get(f"{API}/me", headers=bearer(session_of(w, name))).json()["unit"] == "voss"  # unchanged

    page = post_form(admin_page(w), "/admin/users", {"username": "fritekst", "role": "coordinator",
                                                     "unit": "min-egen-enhet", "password": PASSWORD})
    assert page.status_code == 422 and "Velg en enhet fra listen." in page.text
    assert "fritekst" not in {u["username"] for u in w.client.get(f"{API}/users", headers=admin).json()}


def test_the_forms_offer_the_configured_units_and_the_pathways_agencies_as_lists(world: World) -> None:
    w = world
    client = admin_page(w)
    html = client.get("/admin/users").text
    unit_select = re.search(r'<select id="unit" name="unit">(.*?)</select>', html)
    agency_select = re.search(r'<select id="agency" name="agency">(.*?)</select>', html)
    assert unit_select and agency_select, "the create form chooses unit and agency from lists"
    assert re.findall(r'<option value="([^"]*)"', unit_select.group(1)) == ["", *w.core.settings.units]
    assert '<option value="police">Politiet</option>' in agency_select.group(1) and 'value="health"' in html
    assert 'name="unit" maxlength' not in html  # no free text
    assert "Deaktiver" in html and "Nytt passord" in html
    active = [u for u in w.client.get(f"{API}/users", headers=w.auth("admin")).json() if u["active"]]
    assert html.count('action="/admin/users/deactivate"') == len(active) - 1  # not offered for yourself
    english = TestClient(w.app, cookies={**client.cookies, "forlop_lang": "en"}).get("/admin/users").text
    assert '<option value="police">Police</option>' in english and "Deactivate" in english
    assert w.client.get(f"{API}/users/placements", headers=w.auth("admin")).json()["units"] == \
        list(w.core.settings.units)


# -- the access log -----------------------------------------------------------------------------------------------


def test_every_change_is_in_the_access_log_naming_the_user_and_never_the_password(world: World) -> None:
    w = world
    name = new_user(w, unit="askoy")
    admin = w.auth("admin")
    w.client.patch(f"{API}/users/{name}", json={"role": "manager", "unit": "voss"}, headers=admin)
    w.client.post(f"{API}/users/{name}/password", json={"password": "hemmelig-nytt-passord"}, headers=admin)
    w.client.post(f"{API}/users/{name}/deactivate", headers=admin)
    post_form(admin_page(w), "/admin/users/reactivate", {"username": name})

    changes = [(e["username"], e["action"], e["reason"], e["case_reference"]) for e in log_of(w, name)
               if e["action"].startswith("user.")]
    assert changes == [("admin", "user.reactivate", f"user={name}", None),
                       ("admin", "user.deactivate", f"user={name}", None),
                       ("admin", "user.password", f"user={name}", None),
                       ("admin", "user.update", f"user={name} role=manager unit=voss", None),
                       ("admin", "user.add", f"user={name} role=coordinator unit=askoy", None)]
    with w.core.engine.connect() as conn:
        reasons = [r or "" for r in conn.execute(sa.select(access_t.c.reason)).scalars()]
    assert not [r for r in reasons if PASSWORD in r or "hemmelig-nytt-passord" in r]  # no password, anywhere

    # What someone else typed as a reason, reading like a change of the account, is not one.
    with w.core.engine.begin() as conn:
        conn.execute(sa.insert(access_t).values(id=uuid.uuid4(), at=datetime.now(timezone.utc), username="koordinator2",
                                                role="coordinator", action="case.break_glass", status=200,
                                                break_glass=True, reason=f"user={name}"))
    assert [e["action"] for e in log_of(w, name) if e["username"] == "koordinator2"] == []


DAY_ROWS = {  # (UTC time, action): Oslo is UTC+1 in March 1999, so 22:30 UTC is still 2 March in Oslo
    datetime(1999, 3, 1, 10, 0, tzinfo=timezone.utc): "case.read",
    datetime(1999, 3, 2, 22, 30, tzinfo=timezone.utc): "case.complete",
    datetime(1999, 3, 2, 23, 30, tzinfo=timezone.utc): "case.pause",  # 3 March in Oslo
    datetime(1999, 3, 5, 8, 0, tzinfo=timezone.utc): "case.resume",
}


def test_the_access_log_is_read_by_date_range_in_oslo_days(world: World) -> None:
    w = world
    name = f"datert-{uuid.uuid4().hex[:6]}"
    with w.core.engine.begin() as conn:
        conn.execute(sa.insert(access_t), [dict(id=uuid.uuid4(), at=at, username=name, role="coordinator",
                                                action=action, case_reference="BGO-1999-0001", status=200,
                                                break_glass=False) for at, action in DAY_ROWS.items()])

    def actions(**params: str) -> list[str]:
        r = w.client.get(f"{API}/audit/access", params=params, headers=w.auth("admin"))
        assert r.status_code == 200, r.text
        return [e["action"] for e in r.json() if e["username"] == name]

    assert actions(user=name) == ["case.resume", "case.pause", "case.complete", "case.read"]
    assert actions(user=name, start="1999-03-02", end="1999-03-02") == ["case.complete"]
    assert actions(user=name, start="1999-03-03") == ["case.resume", "case.pause"]
    assert actions(user=name, end="1999-03-02") == ["case.complete", "case.read"]
    assert actions(start="1999-03-01", end="1999-03-03") == ["case.pause", "case.complete", "case.read"]  # dates only
    assert actions(case="BGO-1999-0001", start="1999-03-04", end="1999-03-31") == ["case.resume"]
    backwards = w.client.get(f"{API}/audit/access", params={"user": name, "start": "1999-03-05", "end": "1999-03-01"},
                             headers=w.auth("admin"))
    assert backwards.status_code == 422 and backwards.headers["content-type"] == "application/problem+json"
    assert backwards.json()["errors"][0]["loc"] == ["body", "end"]

    client = admin_page(w)
    page = client.get("/admin/access", params={"user": name, "start": "1999-03-02", "end": "1999-03-02"})
    # one entry, its action in words ("Fullfør et steg", not the code case.complete)
    assert page.status_code == 200 and page.text.count("Fullfør et steg") == 1 and "case.complete" not in page.text
    assert 'value="1999-03-02"' in page.text
    wrong = client.get("/admin/access", params={"user": name, "start": "1999-03-05", "end": "1999-03-01"})
    assert wrong.status_code == 422 and "Sluttdatoen er før startdatoen." in wrong.text
    # and the reading names its filter in its own row
    mine = w.client.get(f"{API}/audit/access", params={"user": "admin", "limit": 3}, headers=w.auth("admin")).json()
    assert any(e["action"] == "audit.read" and e["reason"] == f"user={name} start=1999-03-02 end=1999-03-02"
               for e in mine)


def test_a_form_refused_by_its_model_says_what_to_do_in_bokmal_naming_the_field(world: World) -> None:
    """A page never shows the validator's English ("String should have at least 8 characters") or a field's code."""
    w = world
    name = new_user(w)
    r = post_form(admin_page(w), "/admin/users/password", {"username": name, "password": "kort"})
    assert r.status_code == 422
    assert "Passord: Skriv minst 8 tegn." in r.text
    assert "String should" not in r.text and "password:" not in r.text
