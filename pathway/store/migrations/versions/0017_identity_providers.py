"""identity providers: an account may be linked to its issuer and subject at an OpenID Connect provider, and a sign-in begun
there waits in ``oidc_login`` (once) until it comes back

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import pathway.store.tables

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = pathway.store.tables.UTCDateTime
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idp", text(length=32), nullable=True))
        batch_op.add_column(sa.Column("idp_issuer", text(length=500), nullable=True))
        batch_op.add_column(sa.Column("idp_subject", text(length=255), nullable=True))
        batch_op.create_index("ux_user_idp_subject", ["idp_issuer", "idp_subject"], unique=True)
    op.create_table(
        "oidc_login",
        sa.Column("state_hash", text(length=64), nullable=False),
        sa.Column("provider", text(length=32), nullable=False),
        sa.Column("nonce", text(length=128), nullable=False),
        sa.Column("code_verifier", text(length=128), nullable=False),
        sa.Column("next_path", text(length=500), nullable=False),
        sa.Column("created_at", when(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state_hash"),
    )
    with op.batch_alter_table("oidc_login", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oidc_login_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("oidc_login", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oidc_login_created_at"))
    op.drop_table("oidc_login")
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_index("ux_user_idp_subject")
        batch_op.drop_column("idp_subject")
        batch_op.drop_column("idp_issuer")
        batch_op.drop_column("idp")
