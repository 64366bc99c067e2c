"""The people who work with Forløp: coordinators and managers of a unit, partner contacts of an agency, admins."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import sqlalchemy as sa

from pathway.accounts import ROLES
from pathway.errors import InvalidArgument
from pathway.store.engine import WRITE
from pathway.store.tables import user_t


def add_user(*, engine: sa.Engine, username: str, role: str, unit: str | None = None, agency: str | None = None,
             language: str = "nb", email: str | None = None, webhook_url: str | None = None) -> None:
    """Create a user. Coordinators and managers belong to a unit, partner contacts to an agency."""
    if role not in ROLES:
        raise InvalidArgument("role", f"must be one of {', '.join(ROLES)}")
    if role in ("coordinator", "manager") and not unit:
        raise InvalidArgument("unit", f"a {role} belongs to a unit")
    if role == "partner" and not agency:
        raise InvalidArgument("agency", "a partner contact belongs to an agency")
    if language not in ("nb", "en"):
        raise InvalidArgument("language", "nb or en")
    if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise InvalidArgument("username", "1–64 letters, digits, '.', '-' or '_'")
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        if conn.execute(sa.select(user_t.c.id).where(user_t.c.username == username)).first() is not None:
            raise InvalidArgument("username", f"'{username}' exists already")
        conn.execute(sa.insert(user_t).values(
            id=uuid.uuid4(), username=username, role=role, unit=unit, agency=agency, language=language,
            email=email, webhook_url=webhook_url, active=True, created_at=datetime.now(timezone.utc)))
