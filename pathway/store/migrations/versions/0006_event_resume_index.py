"""Index for the timeliness report: each case's resume events (rare), so it never reads the whole event table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

RESUME = sa.text("operation = 'resume'")


def upgrade() -> None:
    op.create_index("ix_event_resume", "case_event", ["case_id", "at"], sqlite_where=RESUME, postgresql_where=RESUME)


def downgrade() -> None:
    op.drop_index("ix_event_resume", table_name="case_event")
