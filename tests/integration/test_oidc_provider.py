"""The test OpenID Connect provider does what the sign-in tests rely on: a real authorization code flow with PKCE
whose ID token carries the groups, each kind of mischief caught by a standard check, claims and keys changed on
demand, machine tokens for a resource, and no process left behind."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import errors, jwt
from joserfc.jwk import KeySet

from tests.suite import processes
from tests.suite.oidc import Mischief, Provider, oidc_provider

ACCOUNTS = {
    "kari": {"name": "Kari Koordinator (syntetisk)", "email": "kari@example.test", "preferred_username": "kari",
             "groups": ["forlop-koordinator-sentrum"]},
    "per": {"name": "Per Partner (syntetisk)", "email": "per@example.test", "preferred_username": "per",
            "groups": []},
}
# As an RP allows for clock skew: under FORLOP_TEST_TODAY the test's clock may trail the provider's by a fraction of
# a second (each process moves its own clock at its start); the expired mischief is an hour old.
LEEWAY = 60
REDIRECT_URI = "http://127.0.0.1:9/login/oidc/test/callback"  # never requested: the test stands in for the RP


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with oidc_provider(tmp_path_factory.mktemp("oidc"), accounts=ACCOUNTS) as running:
        yield running


@dataclass(frozen=True)
class SignIn:
    id_token: str
    nonce: str


def authorize(provider: Provider, client_id: str = "forlop", secret: str = "forlop-secret"
              ) -> tuple[OAuth2Client, str, str, str]:
    rp = OAuth2Client(client_id, secret, scope="openid profile email groups", redirect_uri=REDIRECT_URI,
                      code_challenge_method="S256")
    verifier, nonce = generate_token(48), generate_token(20)
    url, _ = rp.create_authorization_url(provider.authorization_endpoint, code_verifier=verifier, nonce=nonce)
    return rp, url, verifier, nonce


def sign_in(provider: Provider, login: str, client_id: str = "forlop", secret: str = "forlop-secret") -> SignIn:
    rp, url, verifier, nonce = authorize(provider, client_id, secret)
    with rp, httpx.Client(follow_redirects=False, timeout=10) as browser:
        back = provider.sign_in_over_http(browser, url, login)
        token = rp.fetch_token(provider.token_endpoint, authorization_response=back, code_verifier=verifier)
    return SignIn(token["id_token"], nonce)


def authorize_url(provider: Provider) -> str:
    rp, url, _, _ = authorize(provider)
    rp.close()
    return url


def published(provider: Provider) -> KeySet:
    return KeySet.import_key_set({"keys": provider.jwks()["keys"]})


def verified(provider: Provider, signed: str, *, nonce: str, audience: str = "forlop") -> dict[str, Any]:
    claims = jwt.decode(signed, published(provider), algorithms=["RS256"]).claims
    jwt.JWTClaimsRegistry(leeway=LEEWAY, iss={"essential": True, "value": provider.issuer},
                          aud={"essential": True, "value": audience},
                          nonce={"essential": True, "value": nonce}).validate(claims)
    return dict(claims)


def header(signed: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(signed.split(".")[0] + "==")))


def test_discovery_names_the_endpoints_and_s256(provider: Provider) -> None:
    meta = provider.discovery
    assert meta["issuer"] == provider.issuer
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri", "end_session_endpoint"):
        assert meta[endpoint].startswith(f"{provider.issuer}/")
    assert "S256" in meta["code_challenge_methods_supported"]
    assert "groups" in meta["claims_supported"]


def test_a_sign_in_with_pkce_gives_an_id_token_with_the_groups(provider: Provider) -> None:
    signed = sign_in(provider, "kari")
    claims = verified(provider, signed.id_token, nonce=signed.nonce)
    assert claims["sub"] == "kari"
    assert claims["groups"] == ["forlop-koordinator-sentrum"]
    assert (claims["name"], claims["email"], claims["preferred_username"]) == (
        "Kari Koordinator (syntetisk)", "kari@example.test", "kari")


def test_the_provider_refuses_an_authorization_request_without_pkce(provider: Provider) -> None:
    with OAuth2Client("forlop", "forlop-secret", scope="openid", redirect_uri=REDIRECT_URI) as rp:
        url, _ = rp.create_authorization_url(provider.authorization_endpoint, nonce="n")
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        back = provider.sign_in_over_http(browser, url, None)
    assert "error=invalid_request" in back


def test_an_unknown_login_comes_back_as_access_denied(provider: Provider) -> None:
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        back = provider.sign_in_over_http(browser, authorize_url(provider), "ukjent")
    assert back.startswith(REDIRECT_URI) and "error=access_denied" in back


def test_a_redirect_uri_outside_the_pattern_is_refused(provider: Provider) -> None:
    with OAuth2Client("forlop", "forlop-secret", scope="openid", redirect_uri="http://evil.test/login/oidc/x/callback",
                      code_challenge_method="S256") as rp:
        url, _ = rp.create_authorization_url(provider.authorization_endpoint, code_verifier=generate_token(48),
                                             nonce="n")
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        page = browser.get(url)
    assert page.status_code == 400 and "redirect_uri" in page.text


def test_the_next_id_token_carries_changed_claims(provider: Provider) -> None:
    provider.set_claims("per", {**ACCOUNTS["per"], "groups": ["forlop-partner-nav"]})
    signed = sign_in(provider, "per")
    assert verified(provider, signed.id_token, nonce=signed.nonce)["groups"] == ["forlop-partner-nav"]


def test_a_second_rp_gets_an_id_token_for_itself(provider: Provider) -> None:
    signed = sign_in(provider, "kari", "annen-app", "annen-secret")
    assert verified(provider, signed.id_token, nonce=signed.nonce, audience="annen-app")["sub"] == "kari"
    with pytest.raises(errors.InvalidClaimError, match="aud"):
        verified(provider, signed.id_token, nonce=signed.nonce)


@pytest.mark.parametrize(("kind", "caught"), [
    ("tamper", errors.BadSignatureError),
    ("unknown_key", errors.InvalidKeyIdError),
    ("wrong_aud", errors.InvalidClaimError),
    ("wrong_iss", errors.InvalidClaimError),
    ("wrong_nonce", errors.InvalidClaimError),
    ("expired", errors.ExpiredTokenError),
])
def test_mischief_harms_the_next_id_token_once(provider: Provider, kind: Mischief, caught: type[Exception]) -> None:
    provider.mischief(kind)
    harmed = sign_in(provider, "kari")
    with pytest.raises(caught):
        verified(provider, harmed.id_token, nonce=harmed.nonce)
    again = sign_in(provider, "kari")
    verified(provider, again.id_token, nonce=again.nonce)


def test_a_rotated_key_signs_and_is_published(provider: Provider) -> None:
    before = sign_in(provider, "kari")
    kid = provider.rotate(keep_old=True)
    assert {k["kid"] for k in provider.jwks()["keys"]} >= {kid, header(before.id_token)["kid"]}
    after = sign_in(provider, "kari")
    assert header(after.id_token)["kid"] == kid
    verified(provider, before.id_token, nonce=before.nonce)

    provider.rotate(keep_old=False)
    with pytest.raises(errors.InvalidKeyIdError):
        verified(provider, after.id_token, nonce=after.nonce)


def test_client_credentials_give_a_jwt_for_the_resource(provider: Provider) -> None:
    token = provider.client_credentials()
    decoded = jwt.decode(token, published(provider), algorithms=["RS256"])
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.claims["aud"] == "https://forlop.test/api"
    assert decoded.claims["iss"] == provider.issuer
    assert decoded.claims["client_id"] == decoded.claims["sub"] == "politi-system"
    assert decoded.claims["scope"] == "read tasks"
    assert {"exp", "iat", "jti"} <= decoded.claims.keys()


def test_logout_returns_to_the_post_logout_uri_and_ends_the_session(provider: Provider) -> None:
    rp, url, verifier, _ = authorize(provider)
    with rp, httpx.Client(follow_redirects=False, timeout=10) as browser:
        back = provider.sign_in_over_http(browser, url, "kari")
        token = rp.fetch_token(provider.token_endpoint, authorization_response=back, code_verifier=verifier)
        assert provider.sign_in_over_http(browser, authorize_url(provider), None).startswith(f"{REDIRECT_URI}?code=")

        logout = httpx.URL(provider.end_session_url, params={
            "id_token_hint": token["id_token"], "post_logout_redirect_uri": "http://127.0.0.1:9/login?signed_out=1",
            "state": "s"})
        assert provider.end_session_over_http(browser, str(logout)) == "http://127.0.0.1:9/login?signed_out=1&state=s"
        assert provider.sign_in_over_http(browser, authorize_url(provider), "kari").startswith(f"{REDIRECT_URI}?code=")


def test_the_provider_is_gone_with_its_process_group_after_the_context(tmp_path: Path) -> None:
    with oidc_provider(tmp_path, accounts={}) as running:
        assert processes.group(running.pid)
    assert not processes.group(running.pid)
    assert not processes.alive(running.pid)
