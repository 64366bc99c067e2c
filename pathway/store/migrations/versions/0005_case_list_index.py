"""Index for the coordinators' case list: open cases of a unit by next deadline (none last), then id.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

from pathway.store.tables import FAR_DUE_SQL

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    far = FAR_DUE_SQL[op.get_bind().dialect.name]
    op.execute(f"CREATE INDEX ix_case_open_unit_next_due ON pathway_case "
               f"(unit, (COALESCE(next_due_at, {far})), id) WHERE closed_at IS NULL")


def downgrade() -> None:
    op.execute("DROP INDEX ix_case_open_unit_next_due")
