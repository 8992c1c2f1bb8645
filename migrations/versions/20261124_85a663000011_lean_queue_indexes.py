"""notification_queue: drop the indexes no query reads, index leases in flight, vacuum often

Every notification row is written three times (insert, claim, settle) and a status change
is never a HOT update, so each index costs three insertions per notification. The
single-column indexes on status, priority, notification_type and scheduled_for were read
by no query (the sweep uses ix_notification_queue_due, the inbox
ix_notification_queue_user_created, which also serves any lookup by user_id); taking back
expired leases gets a partial index holding only the rows in flight, and the batch key
index holds only the rows that carry a key (held ones and summaries).

The queue's rows are each updated twice within seconds of their insert, so its dead row
versions pile up far faster than autovacuum's default 20 % of the table triggers a run:
the queue and the delivery rows get vacuumed at 2 %.

Revision ID: 85a663000011
Revises: 85a663000010
Create Date: 2026-11-24 11:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "85a663000011"
down_revision: str | Sequence[str] | None = "85a663000010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPPED = {
    "ix_notification_queue_user_id": ["user_id"],
    "ix_notification_queue_notification_type": ["notification_type"],
    "ix_notification_queue_status": ["status"],
    "ix_notification_queue_scheduled_for": ["scheduled_for"],
    "ix_notification_queue_priority": ["priority"],
}


def _batch_key_index(**where: sa.TextClause) -> None:
    op.drop_index("ix_notification_queue_batch_key", table_name="notification_queue")
    op.create_index(
        "ix_notification_queue_batch_key",
        "notification_queue",
        ["batch_key", "created_at"],
        unique=False,
        **where,
    )


HOT_TABLES = ("notification_queue", "notification_deliveries")
AUTOVACUUM = "autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02"


def upgrade() -> None:
    for table in HOT_TABLES:
        op.execute(f"ALTER TABLE {table} SET ({AUTOVACUUM})")
    for name in DROPPED:
        op.drop_index(name, table_name="notification_queue")
    _batch_key_index(postgresql_where=sa.text("batch_key IS NOT NULL"))
    op.create_index(
        "ix_notification_queue_lease",
        "notification_queue",
        ["lease_expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'processing'"),
    )


def downgrade() -> None:
    for table in HOT_TABLES:
        op.execute(
            f"ALTER TABLE {table} RESET"
            " (autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor)"
        )
    op.drop_index(
        "ix_notification_queue_lease",
        table_name="notification_queue",
        postgresql_where=sa.text("status = 'processing'"),
    )
    _batch_key_index()
    for name, columns in DROPPED.items():
        op.create_index(name, "notification_queue", columns, unique=False)
