"""The ledger: items, attempts, receipts.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("campaign", sa.String(64), nullable=False),
        sa.Column("post", sa.String(64), nullable=False),
        sa.Column("audience", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("occurrence", sa.Integer, nullable=False),
        sa.Column("slot_utc", sa.DateTime, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("knowledge", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("payload_digest", sa.String(64), nullable=False),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_expires", sa.DateTime),
        sa.Column("first_claimed_at", sa.DateTime),
        sa.Column("attempt_count", sa.Integer, nullable=False),
        sa.Column("planned_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("published_at", sa.DateTime),
    )
    op.create_index("ix_items_state_slot", "items", ["state", "slot_utc"])
    op.create_index("ix_items_campaign", "items", ["campaign"])
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.String(32), sa.ForeignKey("items.id"), nullable=False, index=True),
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_table(
        "receipts",
        sa.Column("item_id", sa.String(32), sa.ForeignKey("items.id"), primary_key=True),
        sa.Column("remote_id", sa.String(255), nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("published_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("receipts")
    op.drop_table("attempts")
    op.drop_index("ix_items_campaign", "items")
    op.drop_index("ix_items_state_slot", "items")
    op.drop_table("items")
