"""session memory and shm limits

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("memory_mb", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("shm_mb", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("shm_mb")
        batch.drop_column("memory_mb")
