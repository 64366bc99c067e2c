"""The access log as its reviewers read it, and a case's emergency (break-glass) grants as the case page shows them."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from pathway.store.tables import access_t, break_glass_t


def access_entries(conn: sa.Connection, *, case_reference: str | None, username: str | None,
                   limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` access-log rows of a case, of a user, or of a user on a case."""
    query = sa.select(access_t).order_by(access_t.c.at.desc()).limit(limit)
    if case_reference:
        query = query.where(access_t.c.case_reference == case_reference)
    if username:
        query = query.where(access_t.c.username == username)
    return [dict(r) for r in conn.execute(query).mappings()]


def emergency_grants(conn: sa.Connection, case_id: uuid.UUID) -> list[Any]:
    """Every emergency grant ever given for a case (rows: username, reason, granted_at), shown on the case."""
    return list(conn.execute(sa.select(break_glass_t.c.username, break_glass_t.c.reason, break_glass_t.c.granted_at)
                             .where(break_glass_t.c.case_id == case_id)).all())
