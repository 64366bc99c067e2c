"""the daily digest's counts per checkpoint live in the inbox only (email and webhook tell the total)

The inbox row keeps them, small counts already folded, since a checkpoint's name is not for an unsafe channel.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.add_column(sa.Column("digest", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.drop_column("digest")
