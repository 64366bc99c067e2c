"""what partners need to act on a handover task, and what the coordinator hears back

A task keeps the coordinator's note to the agency, its urgency (the case's threat level when it was sent), who last
answered it and what they wrote; a case keeps the level of its latest threat assessment; a user may give a work phone
(a coordinator's, for partners to call). Tasks and cases of before keep NULL: they had none of it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("handover_task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("urgency", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column("reply", sa.Text(), nullable=True))
    with op.batch_alter_table("pathway_case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("risk", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("phone")
    with op.batch_alter_table("pathway_case", schema=None) as batch_op:
        batch_op.drop_column("risk")
    with op.batch_alter_table("handover_task", schema=None) as batch_op:
        for column in ("reply", "updated_by", "urgency", "note"):
            batch_op.drop_column(column)
