"""The ID token's checks on their own (pathway.identity.OidcClient.verify and id_token_claims), with a key set of our
own in place of the provider's JWKS: algorithm confusion (``none``, HS256 keyed with the public key) is refused before
any key is tried, and each claim the check names is needed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from pathway.identity import Label, OidcClient, Provider, RoleRule, SignInRefused

pytestmark = pytest.mark.any_date  # the clock is the test's own
NOW = 1_900_000_000
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
PROVIDER = Provider(name="kommune", issuer="https://idp.example.test", client_id="forlop", label=Label(nb="Kommunen"),
                    roles=[RoleRule(group="g", role="admin")])


@pytest.fixture
def oidc(monkeypatch: pytest.MonkeyPatch) -> OidcClient:
    client = OidcClient(PROVIDER, secret="s", clock=lambda: float(NOW))
    published = KeySet.import_key_set({"keys": [KEY.as_dict(private=False)]})
    monkeypatch.setattr(client, "keys", lambda refresh=False: published)
    return client


def claims(**changes: Any) -> dict[str, Any]:
    return {"iss": PROVIDER.issuer, "aud": "forlop", "sub": "kari", "nonce": "n1", "iat": NOW - 10, "exp": NOW + 300,
            **changes}


def signed(payload: dict[str, Any], alg: str = "RS256") -> str:
    return jwt.encode({"alg": alg, "kid": "k1"}, payload, KEY)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_a_good_id_token_passes(oidc: OidcClient) -> None:
    assert oidc.id_token_claims(signed(claims()), nonce="n1")["sub"] == "kari"


@pytest.mark.parametrize(("change", "why"), [
    ({"aud": "annen-app"}, "aud"), ({"aud": ["annen-app", "forlop"]}, "azp"), ({"iss": "https://other.test"}, "iss"),
    ({"exp": NOW - 61}, "expired"), ({"nonce": "n2"}, "nonce"), ({"sub": None}, "sub")])
def test_each_claim_is_checked(oidc: OidcClient, change: dict[str, Any], why: str) -> None:
    payload = {k: v for k, v in claims(**change).items() if v is not None}
    with pytest.raises(SignInRefused) as refused:
        oidc.id_token_claims(signed(payload), nonce="n1")
    assert refused.value.why == "invalid", why


def test_algorithm_confusion_is_refused(oidc: OidcClient) -> None:
    body = b64(json.dumps(claims()).encode())
    unsigned = f"{b64(json.dumps({'alg': 'none', 'kid': 'k1'}).encode())}.{body}."
    header = b64(json.dumps({"alg": "HS256", "kid": "k1"}).encode())
    public_pem = KEY.as_pem(private=False)  # the attack: the public key as an HMAC secret
    mac = b64(hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    for token in (unsigned, f"{header}.{body}.{mac}"):
        with pytest.raises(SignInRefused) as refused:
            oidc.id_token_claims(token, nonce="n1")
        assert refused.value.why == "invalid" and "algorithm" in refused.value.detail


def test_a_token_signed_with_another_key_is_refused(oidc: OidcClient) -> None:
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"})  # the same kid, another key
    with pytest.raises(SignInRefused):
        oidc.id_token_claims(jwt.encode({"alg": "RS256", "kid": "k1"}, claims(), other), nonce="n1")
