"""`serve`'s heartbeat: liveness without Prefect (`status`, `/health`).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("worker", sa.String(128), primary_key=True),
        sa.Column("beat_at", sa.DateTime, nullable=False),
        sa.Column("every_seconds", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("heartbeats")
