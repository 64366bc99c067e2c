"""Signing in through the municipality's and the police's identity providers (issue 18), over HTTP against two real
OpenID Connect providers (Node.js ``oidc-provider`` on 127.0.0.1): people land on their own start page with the role
their groups give; a person without a mapped group, a blocked account and an account name that is taken are refused
with a page that says why; a tampered ID token, a wrong audience, an expired token, a wrong nonce or issuer, a key
the provider does not publish and a replayed or foreign ``state`` are each refused and sign no one in; a group
removed at the provider changes the role at the next sign-in; signing out goes through the provider; the API takes
the provider's access tokens for its own audience only; passwords can be turned off."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta, timezone
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from pathway import identity
from pathway.bootstrap import Forlop
from pathway.store.tables import access_t, user_t
from tests.e2e.oidc_support import API_AUDIENCE, COORDINATORS, MANAGERS, at_provider, begin, sign_in, two_providers
from tests.suite.oidc import Provider

pytest.register_assert_rewrite("tests.e2e.api_support")
from tests.e2e.api_support import API, World, signed_in  # noqa: E402

pytest_plugins = ["tests.e2e.api_support"]

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
REFRESH = re.compile(r'http-equiv="refresh" content="0;url=([^"]+)"')


@pytest.fixture(scope="module")
def providers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Provider, Provider, Path]]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FORLOP_TEST_POLICE_SECRET", "forlop-secret")  # the police's client secret, from the environment
        with two_providers(tmp_path_factory.mktemp("oidc")) as found:
            yield found


@pytest.fixture
def municipality(providers: tuple[Provider, Provider, Path]) -> Provider:
    return providers[0]


@pytest.fixture
def police(providers: tuple[Provider, Provider, Path]) -> Provider:
    return providers[1]


def app_of(world: World, config: Path, **settings: object) -> TestClient:
    """Forløp on the world's database, registered with both providers (its public address is the test client's)."""
    core = Forlop(settings=world.core.settings.model_copy(update={
        "oidc_config": config, "public_url": "http://testserver", **settings}),
        engine=world.core.engine, catalog=world.core.catalog)
    return TestClient(create_app(core))


@pytest.fixture
def client(world: World, providers: tuple[Provider, Provider, Path]) -> TestClient:
    return app_of(world, providers[2])


def signed_in_to(response: object, client: TestClient) -> str:
    """Where a successful sign-in sends the browser on (the page's own refresh), with the session cookie set."""
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    target = REFRESH.search(response.text)  # type: ignore[attr-defined]
    assert target is not None, response.text  # type: ignore[attr-defined]
    assert client.cookies.get("forlop_session"), "no session cookie"
    return target.group(1)


def account(world: World, username: str) -> sa.Row:  # type: ignore[type-arg]
    with world.core.engine.connect() as conn:
        return conn.execute(sa.select(user_t).where(user_t.c.username == username)).one()


def logged(world: World, username: str) -> list[str]:
    with world.core.engine.connect() as conn:
        return list(conn.execute(sa.select(access_t.c.action).where(access_t.c.username == username)
                                 .order_by(access_t.c.at)).scalars())


def test_a_coordinator_signs_in_through_the_municipality_and_lands_on_their_units_cases(
        world: World, client: TestClient, municipality: Provider) -> None:
    page = client.get("/login")
    assert "Logg inn med Bergen kommune" in page.text and "Logg inn med politiet" in page.text
    assert 'name="password"' in page.text  # passwords stay on by default (the demo's)
    target = signed_in_to(sign_in(client, municipality, "kommune", "kari"), client)
    assert target == "/cases"
    cases = client.get(target)
    assert cases.status_code == 200
    ours = world.references(unit="bergen-sentrum")
    theirs = [r for r in world.references() if r not in ours]
    assert any(r in cases.text for r in ours) and not any(r in cases.text for r in theirs)
    kari = account(world, "kari")  # made at the first sign-in, linked to the provider's subject
    assert (kari.role, kari.unit, kari.agency, kari.idp, kari.idp_subject) == (
        "coordinator", "bergen-sentrum", None, "kommune", "kari")
    assert kari.password_hash is None and kari.email == "kari@example.test"
    assert "sign_in" in logged(world, "kari")
    me = client.get("/cases")
    assert me.status_code == 200  # the session holds for the next page too


def test_the_administrator_sees_who_signs_in_with_which_provider(
        world: World, client: TestClient, police: Provider) -> None:
    signed_in_to(sign_in(client, police, "politiet", "per"), client)
    admin = signed_in(TestClient(client.app), "admin")
    page = admin.get("/admin/users").text
    row = re.search(r'<th scope="row">per\.politi</th>(.*?)</tr>', page, re.S)
    assert row is not None and ">politiet</td>" in row.group(1), page
    local = re.search(r'<th scope="row">koordinator</th>(.*?)</tr>', page, re.S)
    assert local is not None and ">passord</td>" in local.group(1)


def test_a_police_contact_signs_in_through_the_police_and_lands_on_their_tasks(
        world: World, client: TestClient, police: Provider) -> None:
    target = signed_in_to(sign_in(client, police, "politiet", "per"), client)
    assert target == "/tasks"
    assert client.get(target).status_code == 200
    per = account(world, "per.politi")
    assert (per.role, per.unit, per.agency, per.idp) == ("partner", None, "police", "politiet")
    assert client.get("/cases", follow_redirects=False).status_code == 404  # a coordinator's page: not theirs


def test_a_person_without_a_mapped_group_is_refused_with_a_page_that_says_why(
        world: World, client: TestClient, municipality: Provider) -> None:
    r = sign_in(client, municipality, "kommune", "ola")
    assert r.status_code == 403
    assert "Du har ikke tilgang til Forløp" in r.text
    assert "Kontoen din hos Bergen kommune er ikke med i noen gruppe som gir tilgang til Forløp" in r.text
    assert not client.cookies.get("forlop_session")
    assert client.get("/cases", follow_redirects=False).headers["location"].startswith("/login")
    assert logged(world, "ola") == ["sign_in.unmapped"]  # refused and logged; no account was made
    with world.core.engine.connect() as conn:
        assert conn.execute(sa.select(user_t).where(user_t.c.username == "ola")).first() is None


@pytest.mark.parametrize("mischief", ["tamper", "wrong_aud", "expired", "wrong_nonce", "wrong_iss", "unknown_key"])
def test_an_id_token_that_does_not_hold_up_signs_no_one_in(
        world: World, client: TestClient, municipality: Provider, mischief: str) -> None:
    municipality.mischief(mischief)  # the provider's next token response carries a spoiled ID token
    r = sign_in(client, municipality, "kommune", "mona")
    assert r.status_code == 400, (mischief, r.status_code, r.text[:300])
    assert "Innloggingen kunne ikke bekreftes" in r.text
    assert not client.cookies.get("forlop_session")
    assert client.get("/cases", follow_redirects=False).status_code == 303


def test_a_state_works_once_and_only_in_the_browser_that_began_the_sign_in(
        world: World, client: TestClient, municipality: Provider) -> None:
    back = at_provider(municipality, begin(client, "kommune"), "mona")
    state = parse_qs(urlsplit(back).query)["state"][0]
    stranger = app_of(world, Path(client.app.state.core.settings.oidc_config))  # type: ignore[attr-defined]
    refused = stranger.get(back, follow_redirects=False)  # another browser: no cookie with this state
    assert refused.status_code == 400 and "Innloggingen kunne ikke bekreftes" in refused.text
    assert signed_in_to(client.get(back, follow_redirects=False), client) == "/cases"  # still the right browser's
    # A copy of the URL and of the cookie, used after the sign-in: the state is used up.
    replayed = TestClient(client.app, cookies={"forlop_oidc": state})
    r = replayed.get(back, follow_redirects=False)
    assert r.status_code == 400 and "Innloggingen kunne ikke bekreftes" in r.text
    assert not replayed.cookies.get("forlop_session")


def test_a_group_removed_at_the_provider_changes_the_role_at_the_next_sign_in(
        world: World, providers: tuple[Provider, Provider, Path], municipality: Provider) -> None:
    first = app_of(world, providers[2])
    assert signed_in_to(sign_in(first, municipality, "kommune", "rolf"), first) == "/cases"
    try:
        municipality.set_claims("rolf", {"preferred_username": "rolf@bergen.kommune.test", "groups": [MANAGERS]})
        second = app_of(world, providers[2])
        assert signed_in_to(sign_in(second, municipality, "kommune", "rolf"), second) == "/reports"
        assert (account(world, "rolf").role, account(world, "rolf").unit) == ("manager", "bergen-sentrum")
        with world.core.engine.connect() as conn:  # the change is in the access log, by the provider
            changed = conn.execute(sa.select(access_t.c.username, access_t.c.reason).where(
                access_t.c.action == "user.update", access_t.c.reason.like("user=rolf %"))).all()
        assert ("provider:kommune", "user=rolf role=manager unit=bergen-sentrum") in changed
        assert first.get("/cases", follow_redirects=False).status_code == 404  # the old session: a manager's now
        municipality.set_claims("rolf", {"preferred_username": "rolf@bergen.kommune.test", "groups": ["alle-ansatte"]})
        third = app_of(world, providers[2])
        r = sign_in(third, municipality, "kommune", "rolf")
        assert r.status_code == 403 and "Du har ikke tilgang til Forløp" in r.text
        # Out of every group: the sessions they still had end at this sign-in too.
        assert second.get("/reports", follow_redirects=False).status_code == 303
    finally:
        municipality.set_claims("rolf", {"preferred_username": "rolf@bergen.kommune.test", "groups": [COORDINATORS]})


def test_an_administrator_can_still_block_a_provider_account(
        world: World, providers: tuple[Provider, Provider, Path], municipality: Provider) -> None:
    before = app_of(world, providers[2])
    assert signed_in_to(sign_in(before, municipality, "kommune", "berit"), before) == "/cases"
    r = world.client.post(f"{API}/users/berit/deactivate", headers=world.auth("admin"))
    assert r.status_code == 200, r.text
    assert before.get("/cases", follow_redirects=False).status_code == 303  # her session ended with the block
    after = app_of(world, providers[2])
    r = sign_in(after, municipality, "kommune", "berit")
    assert r.status_code == 403 and "Kontoen din er sperret i Forløp" in r.text
    assert logged(world, "berit")[-1] == "sign_in.blocked"


def test_an_account_name_another_account_has_is_not_taken_over(
        world: World, client: TestClient, municipality: Provider) -> None:
    r = sign_in(client, municipality, "kommune", "koordinator")  # the demo's local coordinator has this name
    assert r.status_code == 403 and "En annen konto i Forløp har allerede brukernavnet ditt" in r.text
    assert account(world, "koordinator").idp is None


def test_signing_out_ends_the_session_here_and_goes_through_the_providers_end_session(
        world: World, client: TestClient, municipality: Provider) -> None:
    signed_in_to(sign_in(client, municipality, "kommune", "mona"), client)
    csrf = CSRF.search(client.get("/cases").text).group(1)  # type: ignore[union-attr]
    r = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 200 and "Du er logget ut av Forløp" in r.text
    onward = urlsplit(REFRESH.search(r.text).group(1).replace("&amp;", "&"))  # type: ignore[union-attr]
    assert f"{onward.scheme}://{onward.netloc}".startswith(municipality.issuer.rstrip("/"))
    assert parse_qs(onward.query) == {"client_id": ["forlop"],
                                      "post_logout_redirect_uri": ["http://testserver/login?note=signed_out"]}
    assert client.get("/cases", follow_redirects=False).status_code == 303


def test_the_api_takes_the_providers_access_token_for_its_own_audience_only(
        world: World, client: TestClient, police: Provider) -> None:
    token = police.client_credentials(resource=API_AUDIENCE, scope="read tasks")
    me = client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert (me.json()["username"], me.json()["token_kind"], me.json()["scopes"]) == (
        "politi", "provider", ["read", "tasks"])
    assert client.get(f"{API}/tasks", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    other = police.client_credentials(resource="https://other.test/api", scope="read tasks")
    refused = client.get(f"{API}/me", headers={"Authorization": f"Bearer {other}"})
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    head, body, signature = token.split(".")
    spoiled = f"{head}.{body}.{signature[:-4]}{'AAAA' if not signature.endswith('AAAA') else 'BBBB'}"
    assert client.get(f"{API}/me", headers={"Authorization": f"Bearer {spoiled}"}).status_code == 401


def test_a_rotated_signing_key_is_fetched_when_a_token_names_it(
        world: World, client: TestClient, municipality: Provider) -> None:
    signed_in_to(sign_in(client, municipality, "kommune", "mona"), client)  # the keys are cached now
    municipality.rotate(keep_old=False)
    again = TestClient(client.app)  # another browser, the same server (and its cached keys)
    assert signed_in_to(sign_in(again, municipality, "kommune", "mona"), again) == "/cases"


def test_passwords_can_be_turned_off_when_a_provider_is_configured(
        world: World, providers: tuple[Provider, Provider, Path]) -> None:
    client = app_of(world, providers[2], password_login=False)
    page = client.get("/login")
    assert "Logg inn med Bergen kommune" in page.text and 'name="password"' not in page.text
    nonce = "x"
    client.cookies.set("forlop_login", nonce)
    r = client.post("/login", data={"username": "koordinator", "password": "demo", "nonce": nonce})
    assert r.status_code == 403 and "Innlogging med passord er slått av" in r.text
    api = client.post(f"{API}/auth/token", data={"username": "koordinator", "password": "demo"})
    assert api.status_code == 403 and api.headers["content-type"].startswith("application/problem+json")


def test_the_sign_in_page_and_its_refusals_are_in_english_on_request(
        world: World, client: TestClient, municipality: Provider) -> None:
    client.cookies.set("forlop_lang", "en")
    assert "Sign in with Bergen municipality" in client.get("/login").text
    r = sign_in(client, municipality, "kommune", "ola")
    assert r.status_code == 403 and "You have no access to Forløp" in r.text


def test_a_provider_account_gets_no_password_here(world: World, client: TestClient, police: Provider) -> None:
    signed_in_to(sign_in(client, police, "politiet", "per"), client)
    r = world.lenient.post(f"{API}/users/per.politi/password", json={"password": "et-langt-passord"},
                           headers=world.auth("admin"))
    assert r.status_code in (400, 409) and r.headers["content-type"].startswith("application/problem+json"), r.text
    assert account(world, "per.politi").password_hash is None


@pytest.mark.parametrize("asked", ["/%09/evil.example", "//evil.example", "/%0a/evil.example", "https://evil.example"])
def test_a_sign_in_goes_on_only_to_a_page_of_this_site(
        world: World, client: TestClient, municipality: Provider, asked: str) -> None:
    r = client.get(f"/login/oidc/kommune?next={asked}", follow_redirects=False)
    assert r.status_code == 303
    back = at_provider(municipality, r.headers["location"], "mona")
    assert signed_in_to(client.get(back, follow_redirects=False), client) == "/cases"


def test_a_sign_in_asked_for_by_a_page_goes_back_to_it(
        world: World, client: TestClient, municipality: Provider) -> None:
    r = client.get("/login/oidc/kommune?next=/inbox%3Fview%3Dlist", follow_redirects=False)
    back = at_provider(municipality, r.headers["location"], "mona")
    assert signed_in_to(client.get(back, follow_redirects=False), client) == "/inbox?view=list"


def test_a_state_of_any_text_is_refused_without_an_error(world: World, client: TestClient) -> None:
    client.cookies.set("forlop_oidc", "abc")
    for state in ("ø", "abc\u00e6", "%00"):
        r = client.get("/login/oidc/kommune/callback", params={"state": state, "code": "x"}, follow_redirects=False)
        assert r.status_code == 400 and "Innloggingen kunne ikke bekreftes" in r.text


def test_a_provider_that_does_not_answer_gets_a_page_and_the_api_a_503(
        world: World, tmp_path: Path, providers: tuple[Provider, Provider, Path]) -> None:
    config = tmp_path / "oidc.yaml"
    config.write_text(providers[2].read_text() + """\
  nede:
    issuer: http://127.0.0.1:9
    client_id: forlop
    client_secret: s
    label: {nb: Nede kommune}
    roles: [{group: x, role: admin}]
    api_audience: https://forlop.test/api
""")
    client = app_of(world, config)
    r = client.get("/login/oidc/nede", follow_redirects=False)
    assert r.status_code == 502 and "Identitetsleverandøren svarer ikke" in r.text
    assert "Fikk ikke kontakt med Nede kommune" in r.text
    token = ".".join(base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=") for part in (
        {"alg": "RS256", "kid": "k"}, {"iss": "http://127.0.0.1:9", "sub": "x", "aud": API_AUDIENCE})) + ".c2ln"
    api = client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 503 and api.headers["content-type"].startswith("application/problem+json")
    assert client.get("/login/oidc/kommune", follow_redirects=False).status_code == 303  # the others still work


def test_a_sign_in_the_person_cancels_at_the_provider_says_so(
        world: World, client: TestClient, municipality: Provider) -> None:
    r = sign_in(client, municipality, "kommune", "ukjent")  # the provider sends back error=access_denied
    assert r.status_code == 400 and "Innloggingen ble avbrutt" in r.text
    assert "Bergen kommune logget deg ikke inn" in r.text


def test_a_sign_in_left_at_the_provider_for_more_than_ten_minutes_is_refused(world: World) -> None:
    begun = datetime.now(timezone.utc)
    state, _ = identity.begin_login(world.core.engine, provider="kommune", next_path="/", now=begun)
    late = begun + identity.LOGIN_TTL + timedelta(seconds=1)
    assert identity.take_login(world.core.engine, state=state, provider="kommune", now=late) is None
    state, _ = identity.begin_login(world.core.engine, provider="kommune", next_path="/", now=begun)
    assert identity.take_login(world.core.engine, state=state, provider="politiet", now=begun) is None  # not its own
    state, _ = identity.begin_login(world.core.engine, provider="kommune", next_path="/cases", now=begun)
    taken = identity.take_login(world.core.engine, state=state, provider="kommune", now=begun)
    assert taken is not None and taken.next_path == "/cases"
    assert identity.take_login(world.core.engine, state=state, provider="kommune", now=begun) is None  # once


def test_the_api_takes_entra_ids_claim_names_for_an_application_and_its_roles(
        world: World, providers: tuple[Provider, Provider, Path]) -> None:
    """Entra ID's application tokens name their client in azp (or appid), say idtyp=app, and carry application
    roles in roles; delegated scopes come in scp. Checked on the claims, past the signature (the grant's rule)."""
    client = app_of(world, providers[2])
    oidc = client.app.state.core.identity.client("politiet")
    claims = {"iss": oidc.provider.issuer, "sub": "3f0c-objekt-id", "aud": API_AUDIENCE, "azp": "politi-system",
              "idtyp": "app", "roles": ["read", "tasks", "Forlop.Annet"], "exp": 4102444800}
    original = oidc.verify
    oidc.verify = lambda token, **expected: dict(claims)  # type: ignore[method-assign]
    try:
        grant = identity.api_grant(world.core.engine, client.app.state.core.identity, _unsigned(claims))
    finally:
        oidc.verify = original  # type: ignore[method-assign]
    assert grant is not None and grant.user.username == "politi" and grant.scopes == {"read", "tasks"}


def _unsigned(claims: dict[str, object]) -> str:
    return ".".join(base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
                    for part in ({"alg": "RS256"}, claims)) + ".c2ln"


def test_an_id_token_is_never_taken_as_an_access_token(
        world: World, providers: tuple[Provider, Provider, Path]) -> None:
    client = app_of(world, providers[2])
    oidc = client.app.state.core.identity.client("politiet")
    claims = {"iss": oidc.provider.issuer, "sub": "politi-system", "client_id": "politi-system", "aud": API_AUDIENCE,
              "scope": "read tasks", "exp": 4102444800}
    original = oidc.verify
    try:
        for extra, taken in (({}, True), ({"nonce": "n"}, False), ({"at_hash": "h"}, False)):
            oidc.verify = lambda token, **expected: {**claims, **extra}  # type: ignore[method-assign]  # noqa: B023
            grant = identity.api_grant(world.core.engine, client.app.state.core.identity, _unsigned(claims))
            assert (grant is not None) is taken, extra
    finally:
        oidc.verify = original  # type: ignore[method-assign]
