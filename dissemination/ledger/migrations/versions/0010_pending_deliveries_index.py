"""Newsletter recipients still to send, indexed on their own.

`ix_deliveries_item_state` (item, state, address) moved every row's index entry at each state
change (pending -> claimed -> sending -> sent): four index writes per message, committed one
message at a time. A partial index of the pending rows is written once, when a row is claimed;
the few queries by other states read the item's rows through the primary key.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_deliveries_item_state", "deliveries")
    op.create_index("ix_deliveries_pending", "deliveries", ["item_id", "address"],
                    sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))


def downgrade() -> None:
    op.drop_index("ix_deliveries_pending", "deliveries")
    op.create_index("ix_deliveries_item_state", "deliveries", ["item_id", "state", "address"])
