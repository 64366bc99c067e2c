"""Signing in with the municipality's identity provider (OpenID Connect), and the API accepting its access tokens.

Configuration (``FORLOP_OIDC_CONFIG``, a YAML file) names each provider: its issuer (discovered at
``/.well-known/openid-configuration``), Forløp's client there, the sign-in button's text, and which of its group or
role claims give which Forløp role, unit or agency. The protocol is Authlib's (authorization code with PKCE, the
token request) and joserfc's (the ID token's and access tokens' signatures and claims); what is Forløp's own is the
mapping from claims to a user, refreshed at every sign-in, and the single use of each sign-in's ``state``.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import requests
import sqlalchemy as sa
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2 import OAuth2Error
from joserfc import jws, jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pathway.accounts import SCOPES, Grant, User, issue_token, token_hash, user_of_row
from pathway.definition.problems import problem_at
from pathway.definition.reader import read_yaml
from pathway.errors import DefinitionError, InvalidArgument, Problem
from pathway.services.users import Choices, end_sessions, placement, valid_username
from pathway.store.access import access_writer
from pathway.store.engine import WRITE
from pathway.store.tables import oidc_login_t, user_t
from pathway.views.access import target_reason

log = logging.getLogger("forlop.identity")

NAME = r"^[a-z][a-z0-9_-]{0,31}$"
LOGIN_TTL = timedelta(minutes=10)  # a sign-in started at the provider must come back within this
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]  # never "none"
LEEWAY = 60  # seconds of clock difference allowed between the provider and us
HTTP_TIMEOUT = 10.0
METADATA_TTL = 3600.0  # discovery and keys are fetched again after an hour (and keys at once on an unknown kid)
UNKNOWN_KID_PAUSE = 1.0  # at most one refetch of the keys a second for tokens with a kid we have not seen
DOWN_PAUSE = 15.0  # after the provider failed to answer, it is not asked again for this long
ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")  # what discovery must name


class RoleRule(BaseModel):
    """One group (or role) claim value and what it makes a user in Forløp."""

    model_config = ConfigDict(extra="forbid")
    group: str = Field(min_length=1, max_length=200)
    role: str  # checked with the unit and agency by ``users.placement``, as for any account
    unit: str | None = Field(default=None, max_length=64)
    agency: str | None = Field(default=None, max_length=64)


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nb: str = Field(min_length=1, max_length=80)
    en: str | None = Field(default=None, max_length=80)

    def of(self, language: str) -> str:
        """The text in ``language`` (bokmål where there is no English)."""
        return (self.en or self.nb) if language == "en" else self.nb


class Provider(BaseModel):
    """One identity provider Forløp is registered with."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="", pattern=r"^$|" + NAME)  # the key in the file
    issuer: str = Field(pattern=r"^https?://", max_length=500)
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: str | None = Field(default=None, max_length=500)
    client_secret_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")  # read from this variable
    label: Label  # the organisation, as the pages name it: "Bergen kommune"
    button: Label | None = None  # the sign-in button's text; by default "Logg inn med <label>" / "Sign in with <label>"
    scopes: list[str] = ["openid", "profile", "email"]
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"  # Entra ID: "groups" (object ids) or "roles" (app roles)
    roles: list[RoleRule] = Field(min_length=1)  # the first rule whose group the user has decides
    end_session: bool = True  # sign out at the provider too, where it offers an end-session endpoint
    api_audience: str | None = Field(default=None, max_length=500)  # accept its access tokens for this audience
    api_clients: dict[str, str] = {}  # a client-credentials token's client id -> the Forløp account it acts as

    def secret(self, environ: dict[str, str]) -> str | None:
        return environ.get(self.client_secret_env) if self.client_secret_env else self.client_secret

    def text(self, language: str) -> str:
        """The organisation's name in ``language``."""
        return self.label.of(language)

    def button_text(self, language: str) -> str | None:
        """The button's own text, if the file gives one (else the page says "Sign in with" the name)."""
        return None if self.button is None else self.button.of(language)

    def assignment(self, claims: dict[str, Any]) -> RoleRule | None:
        """The first rule whose group the user's claims carry, or None: no role in Forløp."""
        held = claims.get(self.groups_claim)
        groups = {held} if isinstance(held, str) else {g for g in held if isinstance(g, str)} \
            if isinstance(held, list) else set()
        return next((rule for rule in self.roles if rule.group in groups), None)


class IdentityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    providers: dict[str, Provider] = Field(min_length=1)


def load_config(path: Path, *, choices: Choices, environ: dict[str, str] | None = None,
                production: bool = False) -> IdentityConfig:
    """The providers of a YAML file; ``DefinitionError`` names the file, line and field of what is wrong: also a
    secret variable that is not set, two providers with one issuer, an API audience that is the client id (ID
    tokens would pass for access tokens), and in production an issuer without https."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError([Problem(name, 1, 1, "(file)", f"cannot read it: {exc.strerror}")]) from None
    doc = read_yaml(text, name)
    try:
        config = IdentityConfig.model_validate(doc)
    except ValidationError as exc:
        raise DefinitionError([problem_at(name, doc, e["loc"], e["msg"]) for e in exc.errors()]) from None
    problems = []
    for key, provider in config.providers.items():
        if not re.fullmatch(NAME, key):
            problems.append(problem_at(name, doc, ("providers", key), "a provider's name: a-z, 0-9, '-', '_'"))
        provider.name = key
        for i, rule in enumerate(provider.roles):
            try:
                rule.unit, rule.agency = placement(rule.role, rule.unit, rule.agency, choices)
            except InvalidArgument as exc:
                problems.append(problem_at(name, doc, ("providers", key, "roles", i, exc.field),
                                           str(exc).removeprefix(f"{exc.field}: ")))
        at = ("providers", key)
        if "openid" not in provider.scopes:
            problems.append(problem_at(name, doc, (*at, "scopes"), "must include openid"))
        if provider.client_secret_env and environ is not None and not environ.get(provider.client_secret_env):
            problems.append(problem_at(name, doc, (*at, "client_secret_env"),
                                       f"the variable {provider.client_secret_env} is not set"))
        if provider.api_audience is not None and provider.api_audience == provider.client_id:
            problems.append(problem_at(name, doc, (*at, "api_audience"),
                                       "must differ from client_id (an ID token would pass for an access token)"))
        if production and not provider.issuer.startswith("https://"):
            problems.append(problem_at(name, doc, (*at, "issuer"), "must be https in production"))
        if sum(p.issuer == provider.issuer for p in config.providers.values()) > 1:
            problems.append(problem_at(name, doc, (*at, "issuer"), "another provider has the same issuer"))
    if problems:
        raise DefinitionError(problems)
    return config


class SignInRefused(Exception):
    """A sign-in through a provider that does not give a session; ``why`` says which page the user sees."""

    def __init__(self, why: Literal["invalid", "unmapped", "blocked", "name_taken", "cancelled", "unreachable"],
                 detail: str) -> None:
        self.why = why
        self.detail = detail  # for the server's log: never a name or a claim's value
        super().__init__(f"{why}: {detail}")


@dataclass
class _Cached:
    value: Any
    fetched: float


class OidcClient:
    """The relying party's side of one provider: discovery, its keys, the authorization request, the token request,
    and validating what comes back. Thread-safe; discovery and keys are cached."""

    def __init__(self, provider: Provider, *, secret: str | None, clock: Callable[[], float] = time.time) -> None:
        self.provider = provider
        self.secret = secret
        self.clock = clock
        self._lock = threading.Lock()
        self._metadata: _Cached | None = None
        self._keys: _Cached | None = None
        self._unknown_kid_fetch = 0.0
        self._down_until = 0.0

    def _get(self, url: str) -> dict[str, Any]:
        """A JSON object from the provider. No lock is held meanwhile; while the provider has just failed, it is not
        asked again for a while, so that requests do not queue behind its timeout."""
        if self.clock() < self._down_until:
            raise SignInRefused("unreachable", "the provider failed a moment ago")
        try:
            response = requests.get(url, timeout=HTTP_TIMEOUT)
            response.raise_for_status()
            data = response.json()
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (requests.RequestException, ValueError) as exc:
            self._down_until = self.clock() + DOWN_PAUSE
            raise SignInRefused("unreachable", f"{url}: {type(exc).__name__}") from None
        return data

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (its issuer must be the configured one, and it must name the endpoints
        we use); an old one is used while the provider cannot give a new one."""
        cached = self._metadata
        if cached is not None and self.clock() - cached.fetched <= METADATA_TTL:
            return cached.value  # type: ignore[no-any-return]
        try:
            data = self._get(self.provider.issuer.rstrip("/") + "/.well-known/openid-configuration")
        except SignInRefused:
            if cached is not None:
                return cached.value  # type: ignore[no-any-return]
            raise
        if data.get("issuer") != self.provider.issuer:  # OpenID Connect Discovery 1.0, section 4.3
            raise SignInRefused("unreachable", "the discovery document names another issuer")
        missing = [k for k in ENDPOINTS if not isinstance(data.get(k), str)]
        if missing:
            raise SignInRefused("unreachable", f"the discovery document lacks {', '.join(missing)}")
        with self._lock:
            self._metadata = _Cached(data, self.clock())
        return data

    def keys(self, *, refresh: bool = False) -> KeySet:
        with self._lock:
            cached = self._keys
        if cached is None or refresh or self.clock() - cached.fetched > METADATA_TTL:
            try:
                data = self._get(str(self.metadata()["jwks_uri"]))
            except SignInRefused:
                if cached is not None and not refresh:
                    return cached.value  # type: ignore[no-any-return]
                raise
            try:
                keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise SignInRefused("unreachable", f"its keys cannot be read: {type(exc).__name__}") from None
            cached = _Cached(keys, self.clock())
            with self._lock:
                self._keys = cached
        return cached.value  # type: ignore[no-any-return]

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str) -> str:
        session = OAuth2Session(self.provider.client_id, self.secret, scope=" ".join(self.provider.scopes),
                                redirect_uri=redirect_uri, code_challenge_method="S256")
        url, _ = session.create_authorization_url(str(self.metadata()["authorization_endpoint"]), state=state,
                                                  code_verifier=code_verifier, nonce=nonce)
        return str(url)

    def exchange(self, *, code: str, redirect_uri: str, code_verifier: str) -> dict[str, Any]:
        """The token response for an authorization code (the client authenticates with its secret)."""
        session = OAuth2Session(self.provider.client_id, self.secret, redirect_uri=redirect_uri,
                                token_endpoint_auth_method="client_secret_basic", default_timeout=HTTP_TIMEOUT)
        try:
            token = session.fetch_token(str(self.metadata()["token_endpoint"]), grant_type="authorization_code",
                                        code=code, code_verifier=code_verifier)
        except OAuth2Error as exc:
            raise SignInRefused("invalid", f"the token request was refused: {exc.error}") from None
        except requests.RequestException as exc:
            raise SignInRefused("unreachable", f"the token request failed: {type(exc).__name__}") from None
        return dict(token)

    def verify(self, token: str, **expected: Any) -> dict[str, Any]:
        """The claims of a signed JWT from this provider, its signature checked against the provider's keys
        (fetched again once when it names a key we do not have), its issuer, expiry and ``expected`` claims
        checked; ``SignInRefused('invalid')`` otherwise."""
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError) as exc:
            raise SignInRefused("invalid", f"not a JWS: {type(exc).__name__}") from None
        if header.get("alg") not in ALGORITHMS:
            raise SignInRefused("invalid", f"algorithm {str(header.get('alg'))[:20]!r} is not accepted")
        try:
            try:
                decoded = jwt.decode(token, self.keys(), algorithms=ALGORITHMS)
            except InvalidKeyIdError:
                decoded = jwt.decode(token, self._keys_for_unknown_kid(), algorithms=ALGORITHMS)
            claims = dict(decoded.claims)
            checks: dict[str, Any] = {"iss": {"essential": True, "value": self.provider.issuer},
                                      "exp": {"essential": True}, "sub": {"essential": True}}
            checks.update({name: {"essential": True, "value": value} for name, value in expected.items()})
            jwt.JWTClaimsRegistry(now=lambda: int(self.clock()), leeway=LEEWAY, **checks).validate(claims)
        except JoseError as exc:
            raise SignInRefused("invalid", f"the token is not valid: {exc.error}") from None
        except (ValueError, TypeError) as exc:
            raise SignInRefused("invalid", f"the token cannot be read: {type(exc).__name__}") from None
        return claims

    def _keys_for_unknown_kid(self) -> KeySet:
        """The keys fetched again (the provider may have rotated them), but not more than once a second."""
        with self._lock:
            wait = self._unknown_kid_fetch + UNKNOWN_KID_PAUSE - self.clock()
            if wait > 0:
                raise SignInRefused("invalid", "the token is signed with a key the provider does not publish")
            self._unknown_kid_fetch = self.clock()
        return self.keys(refresh=True)

    def id_token_claims(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        """An ID token's claims (OpenID Connect Core 3.1.3.7): signature, issuer, audience (and ``azp`` when it has
        several), expiry and the nonce of this sign-in."""
        claims = self.verify(id_token, aud=self.provider.client_id, nonce=nonce)
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.provider.client_id:
            raise SignInRefused("invalid", "an ID token for several audiences without us as azp")
        return claims

    def end_session_url(self, *, post_logout_redirect_uri: str) -> str | None:
        if not self.provider.end_session:
            return None
        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except SignInRefused:
            return None
        if not isinstance(endpoint, str):
            return None
        return str(requests.Request("GET", endpoint, params={
            "client_id": self.provider.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}).prepare().url)


class Identity:
    """The configured providers, each with its client."""

    def __init__(self, config: IdentityConfig | None, environ: dict[str, str]) -> None:
        self.providers: dict[str, Provider] = dict(config.providers) if config else {}
        self.clients = {name: OidcClient(p, secret=p.secret(environ)) for name, p in self.providers.items()}

    def __bool__(self) -> bool:
        return bool(self.providers)

    def client(self, name: str) -> OidcClient | None:
        return self.clients.get(name)

    def by_issuer(self, issuer: str) -> OidcClient | None:
        return next((c for c in self.clients.values() if c.provider.issuer == issuer), None)


@dataclass(frozen=True)
class PendingLogin:
    provider: str
    nonce: str
    code_verifier: str
    next_path: str


def begin_login(engine: sa.Engine, *, provider: str, next_path: str,
                now: datetime | None = None) -> tuple[str, PendingLogin]:
    """A new sign-in at ``provider``: its ``state`` (for the browser and the provider) and what the callback needs,
    kept in the database under a hash of the state so that every process can finish it, once."""
    now = now or datetime.now(timezone.utc)
    state = secrets.token_urlsafe(32)
    pending = PendingLogin(provider, secrets.token_urlsafe(32), secrets.token_urlsafe(48), next_path)
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        conn.execute(sa.delete(oidc_login_t).where(oidc_login_t.c.created_at < now - LOGIN_TTL))
        conn.execute(sa.insert(oidc_login_t).values(state_hash=token_hash(state), provider=provider, nonce=pending.nonce,
                                                    code_verifier=pending.code_verifier, next_path=next_path,
                                                    created_at=now))
    return state, pending


def take_login(engine: sa.Engine, *, state: str, provider: str, now: datetime | None = None) -> PendingLogin | None:
    """The sign-in ``state`` belongs to, removed as it is read (so a replayed state finds nothing), if it was begun
    at ``provider`` within the last ten minutes."""
    now = now or datetime.now(timezone.utc)
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        row = conn.execute(sa.delete(oidc_login_t).where(oidc_login_t.c.state_hash == token_hash(state)).returning(
            oidc_login_t.c.provider, oidc_login_t.c.nonce, oidc_login_t.c.code_verifier, oidc_login_t.c.next_path,
            oidc_login_t.c.created_at)).first()
    if row is None or row.provider != provider or row.created_at < now - LOGIN_TTL:
        return None
    return PendingLogin(row.provider, row.nonce, row.code_verifier, row.next_path)


def sign_in(engine: sa.Engine, provider: Provider, claims: dict[str, Any], *, ttl: timedelta,
            client: str | None = None, now: datetime | None = None) -> tuple[str, User]:
    """A browser session for the person a validated ID token names: their account (linked by provider and
    subject, made at their first sign-in) takes the role, unit and agency their groups give now. Refused, and
    logged, when no group gives a role, when an administrator has blocked the account, or when the account name is
    another account's."""
    now = now or datetime.now(timezone.utc)
    subject = claims["sub"]
    if not isinstance(subject, str) or not 0 < len(subject) <= 255:
        raise SignInRefused("invalid", f"provider {provider.name}: a subject that is not 1 to 255 characters")
    who = f"provider {provider.name}, subject {token_hash(provider.name + ':' + subject)[:12]}"
    for attempt in (1, 2):  # a first sign-in in two processes at once: the second finds the account the first made
        try:
            with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
                outcome = _admit(conn, provider, subject, claims, who=who, client=client, now=now, ttl=ttl)
            break
        except sa.exc.IntegrityError:
            if attempt == 2:
                raise
    if isinstance(outcome, SignInRefused):
        raise outcome
    log.info("signed in through %s as %s", who, outcome[1].role)
    return outcome


def _admit(conn: sa.Connection, provider: Provider, subject: str, claims: dict[str, Any], *, who: str,
           client: str | None, now: datetime, ttl: timedelta) -> tuple[str, User] | SignInRefused:
    """``sign_in``'s decision and its writes (in the caller's transaction): a session, or why not (logged)."""
    rule = provider.assignment(claims)
    username = account_name(claims.get(provider.username_claim))
    linked = (user_t.c.idp_issuer == provider.issuer) & (user_t.c.idp_subject == subject)
    row = conn.execute(sa.select(user_t).where(linked)).first()
    name = row.username if row is not None else username
    if rule is None:
        _refusal(conn, name, "sign_in.unmapped", client)
        if row is not None and row.active:  # out of every group: what they were signed in with ends now too
            end_sessions(conn, row, now)
        return SignInRefused("unmapped", f"{who}: no group of the user gives a role in Forløp")
    if row is not None and not row.active:
        _refusal(conn, name, "sign_in.blocked", client)
        return SignInRefused("blocked", f"{who}: the account is blocked in Forløp")
    if row is None:
        if username is None:
            return SignInRefused("invalid", f"{who}: no usable {provider.username_claim} claim")
        if conn.execute(sa.select(user_t.c.id).where(user_t.c.username == username)).first() is not None:
            _refusal(conn, username, "sign_in.name_taken", client)
            return SignInRefused("name_taken", f"{who}: its account name belongs to another account")
        conn.execute(sa.insert(user_t).values(id=uuid.uuid4(), username=username, role=rule.role, unit=rule.unit,
                                              agency=rule.agency, language="nb", active=True, created_at=now,
                                              idp=provider.name, idp_issuer=provider.issuer, idp_subject=subject))
    elif (row.role, row.unit, row.agency) != (rule.role, rule.unit, rule.agency):  # the groups changed at the provider
        access_writer(username=f"provider:{provider.name}"[:64], role="none", action="user.update", client=client,
                      reason=target_reason(row.username, ("role", rule.role), ("unit", rule.unit),
                                           ("agency", rule.agency)))(conn)
    email = claims.get("email")
    row = conn.execute(sa.update(user_t).where(linked).values(
        idp=provider.name, role=rule.role, unit=rule.unit, agency=rule.agency,
        **({"email": email[:320]} if isinstance(email, str) else {}))
        .returning(*user_t.c)).one()
    token, _, _ = issue_token(conn, row.id, "web", now=now, ttl=ttl)
    access_writer(username=row.username, role=row.role, action="sign_in", client=client,
                  reason=f"provider {provider.name}")(conn)
    return token, user_of_row(row)


def _refusal(conn: sa.Connection, username: str | None, action: str, client: str | None) -> None:
    """A refused sign-in in the access log (as the administrator's page shows it): who, when, from where, why."""
    access_writer(username=username or "(unknown)", role="none", action=action, client=client, status=403)(conn)


def account_name(claim: object) -> str | None:
    """The account name a provider's claim gives: as it is, or an e-mail-like name's part before '@' (Entra ID's
    user principal name); None when that is not a valid account name."""
    if not isinstance(claim, str):
        return None
    name = claim.split("@", 1)[0] if "@" in claim else claim
    return name if valid_username(name) else None


def api_grant(engine: sa.Engine, identity: Identity, token: str) -> Grant | None:
    """The grant of a provider's access token (a JWT for our audience, validated like an ID token), or None. It
    acts as the account linked to its subject, or (a client-credentials token) the account its client is mapped
    to, with the scopes of ours it carries."""
    issuer = _unverified_issuer(token)
    oidc = identity.by_issuer(issuer) if isinstance(issuer, str) else None
    if oidc is None or not oidc.provider.api_audience:
        return None
    try:
        claims = oidc.verify(token, aud=oidc.provider.api_audience)
        if "nonce" in claims or "at_hash" in claims:  # an ID token is never an access token
            raise SignInRefused("invalid", "an ID token is not an access token")
    except SignInRefused as exc:
        if exc.why == "unreachable":
            raise  # not the caller's fault: the API answers 503
        log.info("a provider's access token was refused: %s", exc.detail)
        return None
    subject = str(claims["sub"])
    client_id = next((str(claims[c]) for c in ("client_id", "azp", "appid") if c in claims), None)  # RFC 9068, Entra
    # A client acting for itself (client credentials): its subject is its client id (RFC 9068), or Entra ID says so.
    for_itself = client_id is not None and (subject == client_id or claims.get("idtyp") == "app")
    account = oidc.provider.api_clients.get(client_id) if for_itself and client_id is not None else None
    with engine.connect() as conn:
        who = (user_t.c.username == account) if account else \
            sa.and_(user_t.c.idp_issuer == oidc.provider.issuer, user_t.c.idp_subject == subject)
        row = conn.execute(sa.select(user_t).where(who, user_t.c.active.is_(True))).first()
    if row is None:
        return None
    granted: set[str] = set()
    for claim in ("scope", "scp", "roles"):  # RFC 9068's; Entra ID's delegated scopes and application roles
        value = claims.get(claim)
        granted |= set(value.split()) if isinstance(value, str) else \
            {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()
    scopes = frozenset(granted) & frozenset(SCOPES)
    token_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{oidc.provider.issuer}#{claims.get('jti', '')}")
    return Grant(user_of_row(row), token_id, "provider", scopes)


def _unverified_issuer(token: str) -> str | None:
    """Which provider a JWT says it is from, only to pick the keys it is checked with."""
    try:
        value = json.loads(jws.extract_compact(token.encode("ascii")).payload)
    except (JoseError, ValueError, UnicodeError):
        return None
    issuer = value.get("iss") if isinstance(value, dict) else None
    return issuer if isinstance(issuer, str) else None


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and not token.startswith(("fs_", "fp_"))

