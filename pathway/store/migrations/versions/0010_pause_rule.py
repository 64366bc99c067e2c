"""the rule of a case's pause under way: how it gives paused time back to deadlines in working days

A pause now records its rule on its event (``paused_time``: working time) and the case row keeps it until the clock
runs again, so that a resume in a later transaction moves the deadlines by it. Cases paused before this revision
keep NULL: their pauses were recorded under the calendar rule, which is what NULL means.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pathway_case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_time", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pathway_case", schema=None) as batch_op:
        batch_op.drop_column("paused_time")
