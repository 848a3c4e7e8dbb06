"""Metric snapshots: append-only readings of each published item's engagement.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.String(32), sa.ForeignKey("items.id"), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("fetched_at", sa.DateTime, nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("available", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_snapshots_item_metric", "snapshots", ["item_id", "metric", "fetched_at"])


def downgrade() -> None:
    op.drop_index("ix_snapshots_item_metric", "snapshots")
    op.drop_table("snapshots")
