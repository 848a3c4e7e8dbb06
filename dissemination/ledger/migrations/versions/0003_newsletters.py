"""Newsletters: per-recipient deliveries, the suppression list and anonymous clicks.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("item_id", sa.String(32), sa.ForeignKey("items.id"), primary_key=True),
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("address_key", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(128)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("sent_at", sa.DateTime),
    )
    op.create_index("ix_deliveries_item_state", "deliveries", ["item_id", "state", "address"])
    op.create_index("ix_deliveries_address_key", "deliveries", ["address_key"])
    op.create_table(
        "suppressions",
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("item_id", sa.String(32)),
        sa.Column("detail", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "clicks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.String(32), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("address", sa.String(320)),
        sa.Column("clicked_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_clicks_item", "clicks", ["item_id"])


def downgrade() -> None:
    op.drop_index("ix_clicks_item", "clicks")
    op.drop_table("clicks")
    op.drop_table("suppressions")
    op.drop_index("ix_deliveries_address_key", "deliveries")
    op.drop_index("ix_deliveries_item_state", "deliveries")
    op.drop_table("deliveries")
