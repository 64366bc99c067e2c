"""police referrals: the police send a unit a referral, which a coordinator accepts (opening a case) or declines

The person's name, phone and what happened are one encrypted blob bound to the referral's id; the status, risk and
who decided are plain, so the unit's queue and the police's status list decrypt nothing.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import pathway.store.tables

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = pathway.store.tables.UTCDateTime
    op.create_table(
        "referral",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("unit", text(length=64), nullable=False),
        sa.Column("agency", text(length=64), nullable=False),
        sa.Column("sent_by", text(length=64), nullable=False),
        sa.Column("received_at", when(timezone=True), nullable=False),
        sa.Column("status", text(length=16), nullable=False),
        sa.Column("risk", text(length=16), nullable=False),
        sa.Column("contact_agreed", sa.Boolean(), nullable=False),
        sa.Column("key_id", text(length=32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("decided_by", text(length=64), nullable=True),
        sa.Column("decided_at", when(timezone=True), nullable=True),
        sa.Column("decline_reason", text(length=2000), nullable=True),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["pathway_case.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.create_index("ix_referral_unit_status", ["unit", "status", "received_at"], unique=False)
        batch_op.create_index("ix_referral_sent_by", ["sent_by", "received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_sent_by")
        batch_op.drop_index("ix_referral_unit_status")
    op.drop_table("referral")
