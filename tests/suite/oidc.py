"""A real OpenID Connect provider for the tests: panva's ``oidc-provider`` on Node.js (``tests/oidc/provider.mjs``),
started on a free port of 127.0.0.1 and ended with its process group.

Its clients: ``forlop`` (secret ``forlop-secret``) and ``annen-app`` (``annen-secret``), confidential RPs of the
authorization code flow with PKCE (S256, required), authenticating with ``client_secret_basic``; any redirect URI
``http://127.0.0.1:<port>/login/oidc/<name>/callback`` (or ``http://testserver/...``) and any post-logout redirect
URI ``http://127.0.0.1:<port>/login[?...]`` is allowed. ``politi-system`` (``politi-secret``, ``client_secret_basic``)
may use ``client_credentials`` only. Scopes ``openid profile email groups``, granted without a consent screen; the
ID token carries ``sub`` (the login), ``name``, ``preferred_username``, ``email`` and ``groups`` from the account's
claims. Resources ``https://forlop.test/api`` and ``https://other.test/api`` (scopes ``read write tasks``) get
RS256 JWT access tokens (``typ: at+jwt``; a client-credentials token's ``sub`` is the client's id).

The login form takes any password but only a login among ``accounts``: an unknown login sends the browser back to
the RP with ``error=access_denied``. The provider runs on the suite's clock (``FORLOP_TEST_TODAY``).
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal

import httpx

from tests.e2e.web_support import free_port
from tests.suite import processes

HERE = Path(__file__).resolve().parents[1] / "oidc"
LOCK = HERE / "package-lock.json"
INSTALLED = HERE / "node_modules" / ".package-lock.json"  # npm writes it last, after every package is in place

NODE_MAJOR = 20  # oidc-provider 9 calls crypto.hash (Node 20.12); Debian 12's own nodejs is 18

Mischief = Literal["tamper", "wrong_aud", "expired", "wrong_nonce", "wrong_iss", "unknown_key"]


class ProviderError(RuntimeError):
    """The test provider could not be installed or started, or did not answer as a provider should."""


def ensure_node_modules() -> None:
    """Install the provider's packages from the lock file when they are missing or older than it; once, while
    parallel workers wait (an exclusive lock on the lock file, which ``npm ci`` only reads)."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        raise ProviderError(f"the OpenID Connect tests need Node.js: {' and '.join(missing)} not found on PATH "
                            "(apt-get install nodejs npm)")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    if int(version.lstrip("v").split(".")[0] or 0) < NODE_MAJOR:
        raise ProviderError(f"the OpenID Connect tests need Node.js {NODE_MAJOR} or later (oidc-provider 9), "
                            f"found {version or 'none'}")
    with LOCK.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if INSTALLED.exists() and INSTALLED.stat().st_mtime >= LOCK.stat().st_mtime:
            return
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True,
                              timeout=600)
        if done.returncode != 0:
            raise ProviderError(f"npm ci in {HERE} failed: {(done.stdout + done.stderr)[-2000:]}")


@contextmanager
def oidc_provider(workdir: Path, *, accounts: dict[str, dict[str, Any]]) -> Iterator[Provider]:
    """A provider on a free port that knows ``accounts`` (login → claims), e.g.::

        {"kari": {"name": "Kari Koordinator (syntetisk)", "email": "kari@example.test",
                  "preferred_username": "kari", "groups": ["forlop-koordinator-sentrum"]}}

    Its log is ``workdir / "oidc-provider.log"``."""
    ensure_node_modules()
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    config = workdir / "oidc-provider.json"
    config.write_text(json.dumps({"port": port, "issuer": issuer, "accounts": accounts}))
    log_path = workdir / "oidc-provider.log"
    log = log_path.open("wb")
    node = processes.spawn(["node", str(HERE / "provider.mjs"), str(config)], cwd=HERE, stdout=log,
                           stderr=subprocess.STDOUT)
    control = httpx.Client(base_url=issuer, timeout=10)
    try:
        discovery = _wait_for_discovery(control, node, log_path)
        yield Provider(issuer, discovery=discovery, control=control, pid=node.pid)
    finally:
        control.close()
        processes.end(node, grace=5)
        log.close()


def _wait_for_discovery(control: httpx.Client, node: subprocess.Popen[Any], log: Path) -> dict[str, Any]:
    for _ in range(300):
        if node.poll() is not None:
            raise ProviderError(f"the test provider stopped ({node.returncode}): {log.read_text()[-2000:]}")
        try:
            response = control.get("/.well-known/openid-configuration", timeout=1)
            if response.status_code == 200:
                return dict(response.json())
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise ProviderError(f"the test provider did not answer in 30 s: {log.read_text()[-2000:]}")


class Provider:
    """A running test provider: its metadata, its test-only controls, and a browser's part in a sign-in by HTTP."""

    def __init__(self, issuer: str, *, discovery: dict[str, Any], control: httpx.Client, pid: int) -> None:
        self.issuer = issuer
        self.discovery = discovery
        self.pid = pid  # also its process group
        self._control = control

    @property
    def authorization_endpoint(self) -> str:
        return str(self.discovery["authorization_endpoint"])

    @property
    def token_endpoint(self) -> str:
        return str(self.discovery["token_endpoint"])

    @property
    def end_session_url(self) -> str:
        return str(self.discovery["end_session_endpoint"])

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def jwks(self) -> dict[str, Any]:
        """The keys published now (a rotation changes them)."""
        return self._call("GET", str(self.discovery["jwks_uri"]))

    def set_claims(self, login: str, claims: dict[str, Any]) -> None:
        """Create the account ``login`` or replace its claims; the next token issued for it carries them."""
        self._call("POST", f"/__test/accounts/{login}", {"claims": claims})

    def mischief(self, kind: Mischief) -> None:
        """Harm the next ID token the token endpoint issues (once): ``tamper`` changes its groups without signing
        again; ``unknown_key`` signs it with a key the JWKS does not hold; ``wrong_aud`` (annen-app), ``expired``
        (an hour ago), ``wrong_nonce`` and ``wrong_iss`` change that claim and sign again with the provider's key."""
        self._call("POST", "/__test/mischief", {"kind": kind})

    def rotate(self, *, keep_old: bool = False) -> str:
        """Sign with a new key from now on and publish it (with the old ones if ``keep_old``); its ``kid``."""
        return str(self._call("POST", "/__test/rotate", {"keep_old": keep_old})["kid"])

    def client_credentials(self, client_id: str = "politi-system", secret: str = "politi-secret", *,
                           resource: str = "https://forlop.test/api", scope: str = "read tasks") -> str:
        """A JWT access token for ``resource`` (its ``aud``), as a machine client gets one."""
        response = self._control.post(self.token_endpoint, auth=(client_id, secret),
                                      data={"grant_type": "client_credentials", "resource": resource, "scope": scope})
        if response.status_code != 200:
            raise ProviderError(f"client_credentials for {client_id}: {response.status_code} {response.text}")
        return str(response.json()["access_token"])

    def sign_in_over_http(self, client: httpx.Client, authorize_url: str, login: str | None) -> str:
        """Do a browser's part of a sign-in: request ``authorize_url`` (the RP's redirect to the provider), submit the
        login form with ``login`` and any password, follow the provider's redirects, and return the first address
        outside the provider, unrequested: ``redirect_uri?code=...&state=...&iss=...``, or ``?error=access_denied``
        for an unknown login. ``client`` must not follow redirects and keeps the provider's cookies between calls;
        with ``login=None`` the provider must answer from its session without asking (single sign-on)."""
        page = self._follow(client, client.get(authorize_url))
        if isinstance(page, str):
            if login is not None:
                raise ProviderError(f"the provider did not ask for a login (it had a session): {page}")
            return page
        if login is None:
            raise ProviderError(f"the provider asked for a login: {page.url}")
        action, fields = _form(page)
        fields |= {"login": login, "password": "whatever"}
        return self._answer(client, client.post(page.url.join(action), data=fields))

    def end_session_over_http(self, client: httpx.Client, end_session_url: str) -> str:
        """Do a browser's part of RP-initiated logout: request ``end_session_url`` (the end_session endpoint with
        ``id_token_hint``/``client_id`` and ``post_logout_redirect_uri``), submit the confirmation form as its
        script does, and return where the provider sends the browser (the ``post_logout_redirect_uri``, with
        ``state`` if one was given), unrequested."""
        page = self._follow(client, client.get(end_session_url))
        if isinstance(page, str):
            return page
        action, fields = _form(page)
        return self._answer(client, client.post(page.url.join(action), data=fields))

    def _answer(self, client: httpx.Client, response: httpx.Response) -> str:
        page = self._follow(client, response)
        if not isinstance(page, str):
            raise ProviderError(f"the provider answered {page.status_code} at {page.url}: {page.text[-1000:]}")
        return page

    def _follow(self, client: httpx.Client, response: httpx.Response) -> httpx.Response | str:
        """Follow redirects within the provider: the page it stops at, or the first address outside it."""
        for _ in range(10):
            if not response.is_redirect:
                return response
            target = response.url.join(response.headers["location"])
            if not str(target).startswith(f"{self.issuer}/"):
                return str(target)
            response = client.get(target)
        raise ProviderError(f"too many redirects at the provider, the last to {response.url}")

    def _call(self, method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._control.request(method, url, json=body)
        if response.status_code != 200:
            raise ProviderError(f"{method} {url}: {response.status_code} {response.text}")
        return dict(response.json())


class _Form(HTMLParser):
    """The first form of a page: its action and the values its inputs submit."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action, self._inside = found.get("action", ""), True
        elif tag == "input" and self._inside and found.get("name"):
            self.fields[found["name"]] = found.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def _form(page: httpx.Response) -> tuple[str, dict[str, str]]:
    """The action and fields of the page's first form."""
    form = _Form()
    form.feed(page.text)
    if page.status_code != 200 or form.action is None:
        raise ProviderError(f"no form at {page.url} ({page.status_code}): {page.text[-1000:]}")
    return form.action, form.fields
