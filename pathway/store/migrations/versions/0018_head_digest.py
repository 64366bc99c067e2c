"""a case keeps the state digest of its last event, so that the next event computes one digest, not two (issue 19)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # "<version>:<digest>", nullable, and not filled in: a case written before this has NULL, and its next event
    # computes the digest from the state as loaded (which is what its last event's state_after holds).
    with op.batch_alter_table("pathway_case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("head_digest", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pathway_case", schema=None) as batch_op:
        batch_op.drop_column("head_digest")
