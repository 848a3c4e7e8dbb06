"""Partners: their short links to our publications, and the anonymous clicks on them.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partner_links",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("publication", sa.String(128), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_partner_links_partner", "partner_links", ["partner", "publication"])
    op.create_table(
        "partner_clicks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("publication", sa.String(128), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
    )
    op.create_index("ix_partner_clicks_partner_day", "partner_clicks", ["partner", "day"])


def downgrade() -> None:
    op.drop_index("ix_partner_clicks_partner_day", "partner_clicks")
    op.drop_table("partner_clicks")
    op.drop_index("ix_partner_links_partner", "partner_links")
    op.drop_table("partner_links")
