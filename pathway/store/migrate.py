"""Run Alembic migrations from code (``forlop db upgrade`` and start-up), and say whether the database is ready."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from pathway.errors import DatabaseError
from pathway.store.engine import WRITE

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    cfg = alembic_config()
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            # An API process's engine cancels long statements; building an index on a large table may rightly be one.
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def is_current(engine: sa.Engine) -> bool:
    """True when the database is at the newest migration (for readiness checks)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head


def readiness(engine: sa.Engine) -> str | None:
    """Why the database cannot serve requests (unreachable, migrations not current), or None when it can."""
    try:
        current = is_current(engine)  # a query of its own: it finds out whether the database answers too
    except (DatabaseError, sa.exc.SQLAlchemyError):  # any failure to ask it: a readiness probe only says "not ready"
        return "database unreachable"
    return None if current else "database migrations are not current"
