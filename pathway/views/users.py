"""The people who work with Forløp, as the administrator's list and the case page's choice of coordinator show them,
and where a user can belong: the units of the settings and the agencies of the registered pathways."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pathway.definition.model import Text
from pathway.settings import Settings
from pathway.store.catalog import DefinitionCatalog
from pathway.store.staff import coordinators_of as coordinators_of  # the case page's choice of coordinator (the rule's own list)
from pathway.store.tables import user_t


SHOWN = (user_t.c.username, user_t.c.role, user_t.c.unit, user_t.c.agency, user_t.c.language, user_t.c.active,
         user_t.c.phone, user_t.c.idp)


def users(conn: sa.Connection) -> list[Any]:
    """Every user by name (rows: username, role, unit, agency, language, active, phone, and the identity provider
    they sign in with, or None for a password); never a password or a token."""
    return list(conn.execute(sa.select(*SHOWN).order_by(user_t.c.username)).all())


def user(conn: sa.Connection, username: str) -> Any | None:
    """One user as ``users`` shows them, or None."""
    return conn.execute(sa.select(*SHOWN).where(user_t.c.username == username)).first()




def units(settings: Settings) -> tuple[str, ...]:
    """The units a coordinator or manager can belong to (``FORLOP_UNITS``), in the order the setting gives them."""
    return settings.units


def agencies(catalog: DefinitionCatalog) -> dict[str, Text]:
    """The agencies a partner contact can belong to, with their names: every agency of every registered pathway
    version (a case on an older version may still hand over to one), named as the newest version names it."""
    found: dict[str, Text] = {}
    for pathway_id, version, _ in catalog.versions():
        found.update(catalog.resolve(pathway_id, version).agencies)
    return dict(sorted(found.items()))
