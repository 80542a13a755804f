"""competition integrity: rounded public scores, submissions that reached the test inputs

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 07:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("round_public", sa.Integer(), nullable=True))
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("inputs_sent_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("inputs_sent_at")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("round_public")
