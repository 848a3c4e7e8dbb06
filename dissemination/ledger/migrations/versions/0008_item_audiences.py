"""Items: the audiences each item serves. A social post shared by several audiences is one item
(audience '*'); the report counts it for each of them.

Revision ID: 0008
Revises: 0007
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "item_audiences",
        sa.Column("item_id", sa.String(32), sa.ForeignKey("items.id"), primary_key=True),
        sa.Column("audience", sa.String(64), primary_key=True),
    )
    op.create_index("ix_item_audiences_audience", "item_audiences", ["audience"])
    # Existing items: the planner kept the audiences in the payload; an item for one audience is its own.
    rows = []
    for item_id, audience, payload in op.get_bind().execute(sa.text("SELECT id, audience, payload FROM items")):
        try:
            members = json.loads(payload).get("audiences") or [audience]
        except (ValueError, AttributeError):
            members = [audience]
        rows += [{"item_id": item_id, "audience": a} for a in dict.fromkeys(members) if a != "*"]
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_index("ix_item_audiences_audience", "item_audiences")
    op.drop_table("item_audiences")
