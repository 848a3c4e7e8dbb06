"""Newsletters: subscribers with their lists and consent records, erased addresses (keyed hash),
lifted suppressions (who, when, why).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unsuppressions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("previous_reason", sa.String(16), nullable=False),
        sa.Column("previous_detail", sa.Text),
        sa.Column("suppressed_at", sa.DateTime, nullable=False),
        sa.Column("lifted_by", sa.String(128), nullable=False),
        sa.Column("lifted_reason", sa.Text, nullable=False),
        sa.Column("lifted_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_unsuppressions_address", "unsuppressions", ["address"])
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("address", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.String(200)),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("organisation", sa.String(64)),
        sa.Column("tracking", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "subscriptions",
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True),
        sa.Column("list", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("consent_source", sa.Text, nullable=False),
        sa.Column("consent_at", sa.DateTime, nullable=False),
        sa.Column("confirmed_at", sa.DateTime),
        sa.Column("request_origin", sa.Text),
        sa.Column("unsubscribed_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_subscriptions_list_state", "subscriptions", ["list", "state"])
    op.create_table(
        "erasures",
        sa.Column("address_hash", sa.String(64), primary_key=True),
        sa.Column("erased_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("erasures")
    op.drop_index("ix_subscriptions_list_state", "subscriptions")
    op.drop_table("subscriptions")
    op.drop_table("subscribers")
    op.drop_index("ix_unsuppressions_address", "unsuppressions")
    op.drop_table("unsuppressions")
