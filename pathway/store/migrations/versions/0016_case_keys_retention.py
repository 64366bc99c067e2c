"""case keys, legal holds and the erasure log: one data key per case (wrapped by a master key) under which its personal
data and free text are sealed, so that destroying the key erases the case in every copy of the database

A referral's sealed blob may now be erased too (NULL) once its case is.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import pathway.store.tables

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = pathway.store.tables.UTCDateTime
    op.create_table(
        "case_key",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("master_key_id", text(length=32), nullable=True),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", when(timezone=True), nullable=False),
        sa.Column("erased_at", when(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["pathway_case.id"]),
        sa.PrimaryKeyConstraint("case_id"),
    )
    with op.batch_alter_table("case_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_key_master_key_id"), ["master_key_id"], unique=False)
    op.create_table(
        "legal_hold",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("set_at", when(timezone=True), nullable=False),
        sa.Column("set_by", text(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("lifted_at", when(timezone=True), nullable=True),
        sa.Column("lifted_by", text(length=200), nullable=True),
        sa.Column("lift_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["pathway_case.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("legal_hold", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_legal_hold_case_id"), ["case_id"], unique=False)
    op.create_table(
        "erasure_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reference", text(length=32), nullable=False),
        sa.Column("unit", text(length=64), nullable=False),
        sa.Column("closed_at", when(timezone=True), nullable=False),
        sa.Column("erased_at", when(timezone=True), nullable=False),
        sa.Column("rule", text(length=200), nullable=False),
        sa.Column("erased_by", text(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("erasure_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_erasure_log_reference"), ["reference"], unique=False)
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.alter_column("key_id", existing_type=text(length=32), nullable=True)
        batch_op.alter_column("ciphertext", existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.alter_column("ciphertext", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.alter_column("key_id", existing_type=text(length=32), nullable=False)
    with op.batch_alter_table("erasure_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_erasure_log_reference"))
    op.drop_table("erasure_log")
    with op.batch_alter_table("legal_hold", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legal_hold_case_id"))
    op.drop_table("legal_hold")
    with op.batch_alter_table("case_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_key_master_key_id"))
    op.drop_table("case_key")
