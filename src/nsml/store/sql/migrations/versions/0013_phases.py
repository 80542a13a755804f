"""competition phases, final selection and score history

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 15:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "phases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("blind", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("daily_limit", sa.Integer(), nullable=True),
        sa.Column("total_limit", sa.Integer(), nullable=True),
        sa.Column("test_size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "name", name="uq_phase_name"),
    )
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("max_selected", sa.Integer(), server_default="2", nullable=False))
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("phase_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("selected", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("carried_from", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("score_history", sa.JSON(), nullable=True))
        batch.create_foreign_key(
            "fk_submissions_phase_id", "phases", ["phase_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_constraint("fk_submissions_phase_id", type_="foreignkey")
        batch.drop_column("score_history")
        batch.drop_column("carried_from")
        batch.drop_column("selected")
        batch.drop_column("phase_id")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("max_selected")
    op.drop_table("phases")
