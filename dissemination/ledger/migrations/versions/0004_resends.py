"""Newsletters: who re-opened which `unknown` recipients for resending, and when.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resends",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.String(32), sa.ForeignKey("items.id"), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("requested_at", sa.DateTime, nullable=False),
        sa.Column("previous_detail", sa.Text),
    )
    op.create_index("ix_resends_item", "resends", ["item_id", "address"])


def downgrade() -> None:
    op.drop_index("ix_resends_item", "resends")
    op.drop_table("resends")
