"""The people who work with Forløp as the rules ask about them: who may coordinate a unit's cases."""

from __future__ import annotations

import sqlalchemy as sa

from pathway.store.tables import user_t


def coordinators_of(conn: sa.Connection, unit: str | None) -> list[str]:
    """The active coordinators of a unit, by name: whom a case of the unit may be assigned to (the case page's
    choice and the rule that refuses anyone else)."""
    return list(conn.execute(sa.select(user_t.c.username).where(
        user_t.c.role == "coordinator", user_t.c.unit == unit, user_t.c.active.is_(True))
        .order_by(user_t.c.username)).scalars())
