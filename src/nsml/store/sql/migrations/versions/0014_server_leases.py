"""servers with leases; who drives each session and submission

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 18:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "servers",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("url", sa.String(length=2048), server_default="", nullable=False),
        sa.Column("host", sa.String(length=255), server_default="", nullable=False),
        sa.Column("pid", sa.Integer(), server_default="0", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("taken_over_by", sa.String(length=128), nullable=True),
        sa.Column("taken_over_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    # NULL: a row from before servers had leases; the first server to start drives it
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("driver", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("stop_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_sessions_driver", ["driver"])
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("driver", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("driver")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_index("ix_sessions_driver")
        batch.drop_column("stop_requested_at")
        batch.drop_column("driver")
    op.drop_table("servers")
