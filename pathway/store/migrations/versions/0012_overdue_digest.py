"""managers hear of overdue steps once a working day, per unit, instead of once per step

The working day is the key: whichever scheduler inserts it first writes that day's digests, so a second scheduler or
a restart never sends one twice.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pathway.store.tables

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "overdue_digest",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("made_at", pathway.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )


def downgrade() -> None:
    op.drop_table("overdue_digest")
