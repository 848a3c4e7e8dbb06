"""Live channel limits: what each channel's server said about its limits at the last preflight.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_limits",
        sa.Column("channel", sa.String(64), primary_key=True),
        sa.Column("server", sa.Text, nullable=False),
        sa.Column("max_characters", sa.Integer),
        sa.Column("characters_per_url", sa.Integer),
        sa.Column("description_limit", sa.Integer),
        sa.Column("max_media", sa.Integer),
        sa.Column("image_size_limit", sa.Integer),
        sa.Column("read_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("channel_limits")
