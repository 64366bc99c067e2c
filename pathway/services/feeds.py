"""Calendar feeds: a coordinator's secret, revocable address of their deadlines (``/calendar/{token}.ics``).

The token is the credential (a calendar program sends no cookie): only its SHA-256 is stored, a user has at most one
live feed (making a new one revokes the old), and a feed answers only while it is not revoked and its user is
active, so a deactivated user's feed stops at once. Making and revoking are in the access log."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime

import sqlalchemy as sa

from pathway.accounts import User, active_user
from pathway.store.access import Writer
from pathway.store.engine import WRITE
from pathway.store.tables import calendar_feed_t

PREFIX = "fc_"  # says what a leaked string is (a calendar feed), as fp_ and fs_ do for tokens


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _live(username: str) -> tuple[sa.ColumnElement[bool], ...]:
    return calendar_feed_t.c.username == username, calendar_feed_t.c.revoked_at.is_(None)


def open_feed(engine: sa.Engine, user: User, *, now: datetime, log: Writer) -> str:
    """A new feed address for ``user`` (returned once: only its hash is kept), revoking the one they had; ``log``
    writes its access-log row in the same transaction."""
    token = PREFIX + secrets.token_urlsafe(32)
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        conn.execute(sa.update(calendar_feed_t).where(*_live(user.username)).values(revoked_at=now))
        conn.execute(sa.insert(calendar_feed_t).values(id=uuid.uuid4(), username=user.username,
                                                       token_hash=_hash(token), created_at=now))
        log(conn)
    return token


def revoke_feed(engine: sa.Engine, user: User, *, now: datetime, log: Writer) -> bool:
    """Revoke ``user``'s feed at once (its address answers 404 from now on); whether there was one."""
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        revoked = conn.execute(sa.update(calendar_feed_t).where(*_live(user.username))
                               .values(revoked_at=now)).rowcount > 0
        log(conn)
    return revoked


def feed_user(conn: sa.Connection, token: str) -> User | None:
    """The active user whose live feed ``token`` is, or None (unknown, revoked, or the user deactivated)."""
    if not token.startswith(PREFIX) or len(token) > 100:
        return None
    username = conn.execute(sa.select(calendar_feed_t.c.username).where(
        calendar_feed_t.c.token_hash == _hash(token), calendar_feed_t.c.revoked_at.is_(None))).scalar_one_or_none()
    return active_user(conn, username) if username is not None else None

