"""Accounts of the people who work with Forløp: argon2 passwords, bearer tokens stored as hashes (with scopes, and
revoked together with what they minted), sign-in attempts limited per client and per account name."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal, get_args

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pathway.errors import N_, InvalidArgument
from pathway.settings import Settings
from pathway.store import limits as limits_store
from pathway.store.engine import WRITE, single_read
from pathway.store.tables import token_t, user_t

ROLES = ("coordinator", "partner", "manager", "admin")  # what a user can be; every role check names these
# What a personal token may be allowed: reading, changing cases (and users), a partner agency's task work.
Scope = Literal["read", "write", "tasks"]
SCOPES: tuple[str, ...] = get_args(Scope)
DEFAULT_SCOPES = ("read", "tasks")  # a personal token made without scopes may change no case
# Held by a password sign-in's session only, never by a personal token: making and revoking tokens.
PASSWORD = "password"

SESSION_TTL = timedelta(minutes=30)
WEB_IDLE = timedelta(minutes=30)  # a browser session ends after this long without a request
WEB_LIFETIME = timedelta(hours=10)  # ... and in any case this long after sign-in (a working day)
LOCK_AFTER = 5  # failed logins in a row
LOCK_FOR = timedelta(minutes=15)
_hasher = PasswordHasher()
# Verifying against this keeps the time of a login for an unknown user like that of a known one.
_DUMMY_HASH = _hasher.hash("not a password anyone has")


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    username: str
    role: str
    unit: str | None
    agency: str | None
    language: str
    phone: str | None = None  # a work phone partner agencies may call (coordinators'), set by an administrator
    idp: str | None = None  # the identity provider the account signs in with (None: a local password)


@dataclass(frozen=True)
class Grant:
    """A valid bearer token: whose it is, which it is, and what it may do."""

    user: User
    token_id: uuid.UUID
    kind: str  # session (a password sign-in), personal, or provider (an identity provider's access token)
    scopes: frozenset[str]  # a personal token's; a session may do whatever its user may

    def allows(self, scope: str | None) -> bool:
        return scope is None or self.kind == "session" or scope in self.scopes


@dataclass(frozen=True)
class LoginLimits:
    """How many sign-in attempts a client address, and an account name, may make in a window."""

    per_client: limits_store.Limit
    per_name: limits_store.Limit
    passwords: bool = True  # False: no one signs in with a password (an identity provider is used instead)

    @classmethod
    def of(cls, settings: Settings) -> LoginLimits:
        window = timedelta(minutes=settings.login_window_minutes)
        return cls(per_client=limits_store.Limit(settings.login_attempts_per_client, window),
                   per_name=limits_store.Limit(settings.login_attempts_per_name, window),
                   passwords=settings.password_login)


DEFAULT_LIMITS = LoginLimits.of(Settings.model_construct())  # the settings' defaults, without the environment


class LoginFailed(Exception):
    """Wrong user name or password, or the account is locked for a while (the answer does not say which)."""


class TooManyAttempts(LoginFailed):
    """Too many sign-in attempts from this client or for this account name: refused before any account is looked
    up or any password checked, the same for every name, for ``retry_after`` more seconds."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many sign-in attempts: try again in {retry_after} seconds")


class PasswordsOff(LoginFailed):
    """Passwords are turned off (``FORLOP_PASSWORD_LOGIN=false``): people sign in through an identity provider."""


class TokenNotAllowed(Exception):
    """Only a password sign-in's session may make a personal token (never a personal token, nor a page)."""


def hash_password(password: str) -> str:
    if len(password) < 4 or len(password) > 1024:
        raise ValueError("a password has 4 to 1024 characters")
    return _hasher.hash(password)


def set_password(engine: sa.Engine, username: str, password: str) -> bool:
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        return conn.execute(sa.update(user_t).where(user_t.c.username == username).values(
            password_hash=hash_password(password), failed_logins=0, locked_until=None)).rowcount == 1


def token_hash(token: str) -> str:
    """What is stored of a secret given out once (a token, a sign-in's state): its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def user_of_row(row: sa.Row) -> User:  # type: ignore[type-arg]
    """The user of a row of ``user_account`` (or of a select with its columns)."""
    return User(row.id, row.username, row.role, row.unit, row.agency, row.language, row.phone, row.idp)



def active_user(conn: sa.Connection, username: str) -> User | None:
    """The active user of this name, or None."""
    row = conn.execute(sa.select(user_t).where(user_t.c.username == username, user_t.c.active.is_(True))).first()
    return user_of_row(row) if row is not None else None


def login(engine: sa.Engine, username: str, password: str, *, now: datetime | None = None,
          slow: bool = True, kind: str = "session", ttl: timedelta = SESSION_TTL, client: str | None = None,
          limits: LoginLimits = DEFAULT_LIMITS) -> tuple[str, User, datetime]:
    """Check a password and issue a token (an API ``session`` or a browser ``web`` session).

    Every attempt is counted first, per ``client`` address (when there is one) and per account name, whether the
    name exists or not; beyond the limits it is refused (``TooManyAttempts``) before anything else, and a success
    gives its count back, so that the limits count failures. Then an unknown name costs what a known one does: one
    argon2 verification (against a dummy hash), the same statements, and on failure the same wait, which grows
    with the failures on that name. Five failures in a row lock a known account for a while."""
    if not limits.passwords:
        raise PasswordsOff()
    now = now or datetime.now(timezone.utc)
    hits = _count_attempt(engine, username, client=client, limits=limits, now=now)
    with engine.connect() as conn:
        row = conn.execute(sa.select(user_t).where(user_t.c.username == username, user_t.c.active.is_(True))).first()
    # An account of an identity provider has no password here (were one set, it would bypass the provider's groups).
    usable = row is not None and row.password_hash is not None and row.idp is None
    stored = row.password_hash if usable else _DUMMY_HASH  # type: ignore[union-attr]
    try:  # outside any transaction: a verification takes a while, and holds no lock meanwhile
        ok = _hasher.verify(stored, password) and usable
    except (VerificationError, InvalidHashError):
        ok = False
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        # Both outcomes are single statements that read and write the counter in the database, so parallel
        # guesses cannot overwrite each other's count (read-then-write let 60 guesses leave a count of 3), and a
        # right password is refused if a lock was set after the row above was read.
        unlocked = sa.or_(user_t.c.locked_until.is_(None), user_t.c.locked_until <= now)
        if ok and row is not None and conn.execute(
                sa.update(user_t).where(user_t.c.id == row.id, user_t.c.active.is_(True), unlocked)
                .values(failed_logins=0, locked_until=None).returning(user_t.c.id)).first() is not None:
            token, _, expires = issue_token(conn, row.id, kind, now=now, ttl=ttl)
            for hit in hits:  # the limits count what fails: a busy office signing in is not an attack
                limits_store.give_back(conn, hit)
            return token, user_of_row(row), expires
        # By name, so that an unknown name runs the same statement (it changes no row).
        conn.execute(sa.update(user_t).where(user_t.c.username == username, user_t.c.active.is_(True)).values(
            failed_logins=user_t.c.failed_logins + 1,
            locked_until=sa.case((sa.and_(user_t.c.failed_logins + 1 >= LOCK_AFTER, unlocked), now + LOCK_FOR),
                                 else_=user_t.c.locked_until)))
    # Committed above, so that the count survives. The wait depends on the name's attempts, never on the account.
    if slow:
        time.sleep(failure_delay(hits[-1].count))
    raise LoginFailed()


def failure_delay(attempts: int) -> float:
    """Seconds a failed sign-in waits, the ``attempts``-th failure on its account name in the window: 0.1 s,
    doubling, up to two seconds."""
    return min(0.05 * 2 ** min(attempts, 6), 2.0)


def _count_attempt(engine: sa.Engine, username: str, *, client: str | None, limits: LoginLimits,
                   now: datetime) -> list[limits_store.Hit]:
    """Count a sign-in attempt per client address and per account name (committed whatever follows, so that
    attempts in parallel are all counted; a success gives its count back): the counts, the name's last, or
    ``TooManyAttempts``."""
    # The name only as a hash: people type their password into the name field.
    keys = [("login:name:" + hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest(), limits.per_name)]
    if client:
        keys.insert(0, ("login:client:" + client[:150], limits.per_client))  # always in this order: no deadlock
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        hits = [limits_store.hit(conn, key, limit=limit, now=now) for key, limit in keys]
        if any(h.count == 1 for h in hits):  # a window starts: forget the ones that ended
            limits_store.purge(conn, before=now - max(limit.window for _, limit in keys))
    refused = [h.retry_after_seconds for h in hits if h.refused]
    if refused:
        raise TooManyAttempts(max(refused))
    return hits


def issue_personal_token(engine: sa.Engine, grant: Grant, *, name: str, days: int | None, max_days: int,
                         scopes: Iterable[str] | None = None,
                         now: datetime | None = None) -> tuple[str, uuid.UUID, datetime, list[str]]:
    """A personal token for integrations, minted by a password sign-in's session (``grant``): it lives ``days``
    (at most, and by default, ``max_days``), may do only what its ``scopes`` say, and is revoked with its session."""
    if grant.kind != "session":
        raise TokenNotAllowed(N_("a personal token is made only from a password sign-in's session"))
    if days is None:
        days = max_days
    if not 1 <= days <= max_days:
        raise InvalidArgument("days", "a personal token lives 1 to {max_days} days", max_days=max_days)
    chosen = sorted(set(DEFAULT_SCOPES if scopes is None else scopes))
    unknown = set(chosen) - set(SCOPES)
    if unknown or not chosen:
        raise InvalidArgument("scopes", "one or more of {choices}", choices=list(SCOPES))
    now = now or datetime.now(timezone.utc)
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        token, token_id, expires = issue_token(conn, grant.user.id, "personal", now=now, ttl=timedelta(days=days),
                                               name=name, parent=grant.token_id, scopes=chosen)
    return token, token_id, expires, chosen


def issue_token(conn: sa.Connection, user_id: uuid.UUID, kind: str, *, now: datetime, ttl: timedelta,
                name: str | None = None, parent: uuid.UUID | None = None,
                scopes: list[str] | None = None) -> tuple[str, uuid.UUID, datetime]:
    """A new token of ``kind`` (``web``: a browser session) for a user, in the caller's transaction: the token,
    its id and when it expires. Only its hash is stored."""
    token = ("fp_" if kind == "personal" else "fs_") + secrets.token_urlsafe(32)
    token_id, expires = uuid.uuid4(), now + ttl
    conn.execute(sa.insert(token_t).values(id=token_id, user_id=user_id, kind=kind, name=name, parent_id=parent,
                                           scopes=scopes, token_hash=token_hash(token), created_at=now,
                                           expires_at=expires))
    return token, token_id, expires


def bearer(engine: sa.Engine, token: str, *, now: datetime | None = None,
           personal_max: timedelta | None = None) -> Grant | None:
    """The grant of a bearer token (an API session or a personal token), if it is valid now; a personal token
    also only while younger than ``personal_max`` (so that a lower cap holds for the tokens made before it)."""
    now = now or datetime.now(timezone.utc)
    young = _LONG_AGO if personal_max is None else now - personal_max
    with single_read(engine) as conn:
        row = conn.execute(_GRANT, {"hash": token_hash(token), "now": now, "young": young}).first()
    if row is None:
        return None
    # A personal token made before tokens had scopes has none: it may only say whose it is (GET /me).
    return Grant(user_of_row(row), row.token_id, row.token_kind, frozenset(row.token_scopes or ()))


# Every API request asks it: built once (building it cost as much as running it). A personal token counts only
# while made after ``:young`` (a cap on its age); the other kinds have their own expiry.
_LONG_AGO = datetime(1970, 1, 1, tzinfo=timezone.utc)
_GRANT = (sa.select(user_t, token_t.c.id.label("token_id"), token_t.c.kind.label("token_kind"),
                    token_t.c.scopes.label("token_scopes"))
          .join(token_t, token_t.c.user_id == user_t.c.id)
          .where(token_t.c.token_hash == sa.bindparam("hash"), token_t.c.kind != "web",
                 token_t.c.revoked_at.is_(None),
                 token_t.c.expires_at > sa.bindparam("now", type_=token_t.c.expires_at.type),
                 sa.or_(token_t.c.kind != "personal",
                        token_t.c.created_at > sa.bindparam("young", type_=token_t.c.created_at.type)),
                 user_t.c.active.is_(True)))


def authenticate(engine: sa.Engine, token: str, *, now: datetime | None = None) -> User | None:
    """The user a bearer token belongs to, if it is valid now."""
    grant = bearer(engine, token, now=now)
    return None if grant is None else grant.user


def authenticate_web(engine: sa.Engine, token: str, *, now: datetime | None = None,
                     idle: timedelta = WEB_IDLE, lifetime: timedelta = WEB_LIFETIME) -> User | None:
    """The user of a browser session, if it was used within ``idle``; each use pushes the end of the session
    (never past ``lifetime`` after sign-in)."""
    now = now or datetime.now(timezone.utc)
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        row = conn.execute(
            sa.select(user_t, token_t.c.id.label("token_id"), token_t.c.created_at.label("signed_in_at"),
                      token_t.c.expires_at.label("session_ends"))
            .join(token_t, token_t.c.user_id == user_t.c.id)
            .where(token_t.c.token_hash == token_hash(token), token_t.c.kind == "web",
                   token_t.c.revoked_at.is_(None), token_t.c.expires_at > now, user_t.c.active.is_(True))
        ).first()
        if row is None:
            return None
        ends = min(now + idle, row.signed_in_at + lifetime)
        if ends - row.session_ends > timedelta(seconds=30):  # not a write on every request of a busy page
            conn.execute(sa.update(token_t).where(token_t.c.id == row.token_id).values(expires_at=ends,
                                                                                       last_used_at=now))
    return user_of_row(row)


def end_session(engine: sa.Engine, token: str, *, now: datetime | None = None) -> None:
    """Sign out: the token is revoked, so a copy of the cookie is worth nothing afterwards."""
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        _revoke(conn, token_t.c.token_hash == token_hash(token), now or datetime.now(timezone.utc))


def list_tokens(engine: sa.Engine, user: User) -> list[sa.Row]:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return list(conn.execute(
            sa.select(token_t.c.id, token_t.c.kind, token_t.c.name, token_t.c.scopes, token_t.c.created_at,
                      token_t.c.expires_at, token_t.c.revoked_at)
            .where(token_t.c.user_id == user.id, token_t.c.kind == "personal").order_by(token_t.c.created_at)))


def revoke_token(engine: sa.Engine, user: User, token_id: uuid.UUID, *, now: datetime | None = None) -> bool:
    """Revoke one of ``user``'s tokens (a personal token, or a session: signing out) and every token it minted;
    False if it is not theirs or not active."""
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        return _revoke(conn, sa.and_(token_t.c.id == token_id, token_t.c.user_id == user.id),
                       now or datetime.now(timezone.utc))


def _revoke(conn: sa.Connection, which: sa.ColumnElement[bool], now: datetime) -> bool:
    """Revoke the active token ``which`` names and, at any depth, what it minted; whether it was active."""
    root = conn.execute(sa.update(token_t).where(which, token_t.c.revoked_at.is_(None)).values(revoked_at=now)
                        .returning(token_t.c.id)).scalar_one_or_none()
    if root is None:
        return False
    tree = sa.select(token_t.c.id).where(token_t.c.parent_id == root).cte("minted", recursive=True)
    tree = tree.union(sa.select(token_t.c.id).where(token_t.c.parent_id == tree.c.id))
    conn.execute(sa.update(token_t).where(token_t.c.id.in_(sa.select(tree.c.id)), token_t.c.revoked_at.is_(None))
                 .values(revoked_at=now))
    return True
