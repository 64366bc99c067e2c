"""a case holds the adult's pathway and one pathway per child

A child's pathway is a case of its own (its own state machine, steps, deadlines, reminders and events) that is part
of the adult's: ``pathway_case.parent_id`` names the adult's case, so the unit, consent and access rules are the
same. The child's record (first name, birth year, school or kindergarten) is encrypted like the person record.
Cases of before keep NULL: they are an adult's pathway.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import pathway.store.tables

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pathway_case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Uuid(), nullable=True))
        batch_op.create_index("ix_pathway_case_parent_id", ["parent_id"], unique=False)
        batch_op.create_foreign_key("fk_pathway_case_parent", "pathway_case", ["parent_id"], ["id"])
    op.create_table(
        "child_record",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", pathway.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["pathway_case.id"]),
        sa.PrimaryKeyConstraint("case_id"),
    )
    with op.batch_alter_table("child_record", schema=None) as batch_op:
        batch_op.create_index("ix_child_record_key_id", ["key_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("child_record", schema=None) as batch_op:
        batch_op.drop_index("ix_child_record_key_id")
    op.drop_table("child_record")
    with op.batch_alter_table("pathway_case", schema=None) as batch_op:
        batch_op.drop_constraint("fk_pathway_case_parent", type_="foreignkey")
        batch_op.drop_index("ix_pathway_case_parent_id")
        batch_op.drop_column("parent_id")
