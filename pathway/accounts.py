"""Accounts of the people who work with Forløp: argon2 passwords, bearer tokens stored as hashes, throttled logins."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pathway.store.engine import WRITE
from pathway.store.tables import token_t, user_t

ROLES = ("coordinator", "partner", "manager", "admin")  # what a user can be; every role check names these

SESSION_TTL = timedelta(minutes=30)
WEB_IDLE = timedelta(minutes=30)  # a browser session ends after this long without a request
WEB_LIFETIME = timedelta(hours=10)  # ... and in any case this long after sign-in (a working day)
PERSONAL_MAX_TTL = timedelta(days=365)
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


class LoginFailed(Exception):
    """Wrong user name or password, or the account is locked for a while (the answer does not say which)."""


def hash_password(password: str) -> str:
    if len(password) < 4 or len(password) > 1024:
        raise ValueError("a password has 4 to 1024 characters")
    return _hasher.hash(password)


def set_password(engine: sa.Engine, username: str, password: str) -> bool:
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        return conn.execute(sa.update(user_t).where(user_t.c.username == username).values(
            password_hash=hash_password(password), failed_logins=0, locked_until=None)).rowcount == 1


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _user(row: sa.Row) -> User:  # type: ignore[type-arg]
    return User(row.id, row.username, row.role, row.unit, row.agency, row.language)


def active_user(conn: sa.Connection, username: str) -> User | None:
    """The active user of this name, or None."""
    row = conn.execute(sa.select(user_t).where(user_t.c.username == username, user_t.c.active.is_(True))).first()
    return _user(row) if row is not None else None


def login(engine: sa.Engine, username: str, password: str, *, now: datetime | None = None,
          slow: bool = True, kind: str = "session", ttl: timedelta = SESSION_TTL) -> tuple[str, User, datetime]:
    """Check a password and issue a token (an API ``session`` or a browser ``web`` session); repeated failures
    are slowed, then locked for a while."""
    now = now or datetime.now(timezone.utc)
    failures = 0
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        row = conn.execute(sa.select(user_t).where(user_t.c.username == username, user_t.c.active.is_(True))).first()
        stored = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
        try:
            ok = _hasher.verify(stored, password) and row is not None and row.password_hash is not None
        except (VerificationError, InvalidHashError):
            ok = False
        # Both outcomes are single statements that read and write the counter in the database, so parallel
        # guesses cannot overwrite each other's count (read-then-write let 60 guesses leave a count of 3), and a
        # right password is refused if a lock was set after the row above was read.
        unlocked = sa.or_(user_t.c.locked_until.is_(None), user_t.c.locked_until <= now)
        if ok and row is not None and conn.execute(
                sa.update(user_t).where(user_t.c.id == row.id, unlocked)
                .values(failed_logins=0, locked_until=None).returning(user_t.c.id)).first() is not None:
            token, expires = _issue(conn, row.id, kind, None, now, ttl)
            return token, _user(row), expires
        if row is not None:
            failures = conn.execute(
                sa.update(user_t).where(user_t.c.id == row.id).values(
                    failed_logins=user_t.c.failed_logins + 1,
                    locked_until=sa.case((sa.and_(user_t.c.failed_logins + 1 >= LOCK_AFTER, unlocked),
                                          now + LOCK_FOR), else_=user_t.c.locked_until))
                .returning(user_t.c.failed_logins)).scalar_one()
    # Committed above, so that the count survives; each failure in a row costs more time, up to two seconds.
    if slow:
        time.sleep(min(0.05 * 2 ** min(failures, 6), 2.0))
    raise LoginFailed()


def issue_personal_token(engine: sa.Engine, user: User, *, name: str, days: int,
                         now: datetime | None = None) -> tuple[str, uuid.UUID, datetime]:
    now = now or datetime.now(timezone.utc)
    ttl = min(timedelta(days=days), PERSONAL_MAX_TTL)
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        token, expires = _issue(conn, user.id, "personal", name, now, ttl)
        token_id = conn.execute(sa.select(token_t.c.id).where(token_t.c.token_hash == _token_hash(token))).scalar_one()
    return token, token_id, expires


def _issue(conn: sa.Connection, user_id: uuid.UUID, kind: str, name: str | None, now: datetime,
           ttl: timedelta) -> tuple[str, datetime]:
    token = ("fp_" if kind == "personal" else "fs_") + secrets.token_urlsafe(32)
    expires = now + ttl
    conn.execute(sa.insert(token_t).values(id=uuid.uuid4(), user_id=user_id, kind=kind, name=name,
                                           token_hash=_token_hash(token), created_at=now, expires_at=expires))
    return token, expires


def authenticate(engine: sa.Engine, token: str, *, now: datetime | None = None) -> User | None:
    """The user a bearer token belongs to, if it is valid now."""
    now = now or datetime.now(timezone.utc)
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(user_t, token_t.c.id.label("token_id"))
            .join(token_t, token_t.c.user_id == user_t.c.id)
            .where(token_t.c.token_hash == _token_hash(token), token_t.c.kind != "web",
                   token_t.c.revoked_at.is_(None), token_t.c.expires_at > now, user_t.c.active.is_(True))
        ).first()
    return None if row is None else _user(row)


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
            .where(token_t.c.token_hash == _token_hash(token), token_t.c.kind == "web",
                   token_t.c.revoked_at.is_(None), token_t.c.expires_at > now, user_t.c.active.is_(True))
        ).first()
        if row is None:
            return None
        ends = min(now + idle, row.signed_in_at + lifetime)
        if ends - row.session_ends > timedelta(seconds=30):  # not a write on every request of a busy page
            conn.execute(sa.update(token_t).where(token_t.c.id == row.token_id).values(expires_at=ends,
                                                                                       last_used_at=now))
    return _user(row)


def end_session(engine: sa.Engine, token: str, *, now: datetime | None = None) -> None:
    """Sign out: the token is revoked, so a copy of the cookie is worth nothing afterwards."""
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        conn.execute(sa.update(token_t).where(token_t.c.token_hash == _token_hash(token),
                                              token_t.c.revoked_at.is_(None))
                     .values(revoked_at=now or datetime.now(timezone.utc)))


def list_tokens(engine: sa.Engine, user: User) -> list[sa.Row]:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return list(conn.execute(
            sa.select(token_t.c.id, token_t.c.kind, token_t.c.name, token_t.c.created_at, token_t.c.expires_at,
                      token_t.c.revoked_at)
            .where(token_t.c.user_id == user.id, token_t.c.kind == "personal").order_by(token_t.c.created_at)))


def revoke_token(engine: sa.Engine, user: User, token_id: uuid.UUID, *, now: datetime | None = None) -> bool:
    now = now or datetime.now(timezone.utc)
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        return conn.execute(sa.update(token_t).where(
            token_t.c.id == token_id, token_t.c.user_id == user.id, token_t.c.revoked_at.is_(None)
        ).values(revoked_at=now)).rowcount == 1
