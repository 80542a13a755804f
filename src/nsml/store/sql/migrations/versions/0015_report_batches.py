"""report batches stored, by the id the SDK gives each

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 21:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_batches",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id", "batch_id"),
    )


def downgrade() -> None:
    op.drop_table("report_batches")
