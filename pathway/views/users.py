"""The people who work with Forløp, as the administrator's list and the case page's choice of coordinator show them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pathway.store.tables import user_t


def users(conn: sa.Connection) -> list[Any]:
    """Every user by name (rows: username, role, unit, agency, language, active); never a password or a token."""
    return list(conn.execute(sa.select(user_t.c.username, user_t.c.role, user_t.c.unit, user_t.c.agency,
                                       user_t.c.language, user_t.c.active).order_by(user_t.c.username)).all())


def coordinators_of(conn: sa.Connection, unit: str | None) -> list[str]:
    """The active coordinators of a unit, by name (whom a case of the unit may be assigned to)."""
    return list(conn.execute(sa.select(user_t.c.username).where(
        user_t.c.role == "coordinator", user_t.c.unit == unit, user_t.c.active.is_(True))
        .order_by(user_t.c.username)).scalars())
