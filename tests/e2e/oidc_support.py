"""Forløp registered with two real OpenID Connect providers (the municipality's and the police's, both the Node.js
``oidc-provider`` on 127.0.0.1, tests/suite/oidc.py): their accounts (synthetic), the configuration file that maps
their groups to roles, and a sign-in done over HTTP as a browser would."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi.testclient import TestClient

from tests.suite.oidc import Provider, oidc_provider

API_AUDIENCE = "https://forlop.test/api"
COORDINATORS = "forlop-koordinator-sentrum"
MANAGERS = "forlop-leder-sentrum"
POLICE = "vest-pd-familievold"


def person(login: str, name: str, *groups: str) -> dict[str, Any]:
    return {"preferred_username": f"{login}@bergen.kommune.test", "name": name, "email": f"{login}@example.test",
            "groups": list(groups)}


# Everyone is synthetic. The municipality's: coordinators, a manager, someone with no Forløp group, and one whose
# account name is already a local account's; the police's: a contact of the family violence team.
MUNICIPALITY = {
    "kari": person("kari", "Kari Koordinator (syntetisk)", COORDINATORS, "alle-ansatte"),
    "rolf": person("rolf", "Rolf Rollebytte (syntetisk)", COORDINATORS),
    "berit": person("berit", "Berit Sperret (syntetisk)", COORDINATORS),
    "mona": person("mona", "Mona Mottak (syntetisk)", COORDINATORS),
    "lise": person("lise", "Lise Leder (syntetisk)", MANAGERS),
    "ola": person("ola", "Ola Utenfor (syntetisk)", "alle-ansatte", "skole-vest"),
    "koordinator": person("koordinator", "Navnelik Person (syntetisk)", COORDINATORS),
}
POLICE_ACCOUNTS = {"per": {"preferred_username": "per.politi", "name": "Per Politi (syntetisk)", "groups": [POLICE]}}


def write_config(path: Path, municipality: str, police: str) -> Path:
    path.write_text(f"""\
providers:
  kommune:
    issuer: {municipality}
    client_id: forlop
    client_secret: forlop-secret
    label: {{nb: Bergen kommune, en: Bergen municipality}}
    scopes: [openid, profile, email, groups]
    roles:
      - {{group: {COORDINATORS}, role: coordinator, unit: bergen-sentrum}}
      - {{group: {MANAGERS}, role: manager, unit: bergen-sentrum}}
    api_audience: {API_AUDIENCE}
  politiet:
    issuer: {police}
    client_id: forlop
    client_secret_env: FORLOP_TEST_POLICE_SECRET
    label: {{nb: politiet, en: the police}}
    button: {{nb: Logg inn med politiet, en: Sign in with the police}}
    scopes: [openid, profile, groups]
    roles:
      - {{group: {POLICE}, role: partner, agency: police}}
    api_audience: {API_AUDIENCE}
    api_clients: {{politi-system: politi}}
""", encoding="utf-8")
    return path


@contextlib.contextmanager
def two_providers(workdir: Path) -> Iterator[tuple[Provider, Provider, Path]]:
    """The municipality's and the police's providers, and the configuration file naming both."""
    for name in ("kommune", "politiet"):
        (workdir / name).mkdir(exist_ok=True)
    with oidc_provider(workdir / "kommune", accounts=MUNICIPALITY) as municipality, \
            oidc_provider(workdir / "politiet", accounts=POLICE_ACCOUNTS) as police:
        yield municipality, police, write_config(workdir / "oidc.yaml", municipality.issuer, police.issuer)


def begin(client: TestClient, provider: str) -> str:
    """Press a provider's button on the sign-in page: the provider's authorization URL Forløp redirects to."""
    page = client.get("/login")
    assert f'href="/login/oidc/{provider}"' in page.text, page.text
    r = client.get(f"/login/oidc/{provider}", follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["location"]


def at_provider(provider: Provider, authorize_url: str, login: str) -> str:
    """Sign in at the provider as ``login``: the path and query it sends the browser back to Forløp with."""
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        back = provider.sign_in_over_http(browser, authorize_url, login)
    parts = urlsplit(back)
    return f"{parts.path}?{parts.query}"


def sign_in(client: TestClient, provider: Provider, name: str, login: str) -> httpx.Response:
    """The whole sign-in of ``login`` through provider ``name`` (kommune or politiet): Forløp's answer to the
    provider's redirect back."""
    return client.get(at_provider(provider, begin(client, name), login), follow_redirects=False)
