"""lifecycle

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 03:00:17.963524
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cache_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("function", sa.String(length=255), nullable=False),
        sa.Column("dataset", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner_id", "key", name="uq_cache_key"),
    )
    op.create_table(
        "credit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("resume_checkpoint", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("charged_until", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("credits", sa.Float(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("daily_credits", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("topped_up_on", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("topped_up_on")
        batch_op.drop_column("daily_credits")
        batch_op.drop_column("credits")

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("charged_until")
        batch_op.drop_column("resume_checkpoint")
        batch_op.drop_column("parent")

    op.drop_table("credit_events")
    op.drop_table("cache_entries")
