"""Newsletters: lifted suppressions (who, when, why).

Revision ID: 0007
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0004"
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


def downgrade() -> None:
    op.drop_index("ix_unsuppressions_address", "unsuppressions")
    op.drop_table("unsuppressions")
