"""Retention and Expo receipt indexes

- notification_queue: ix_notification_queue_finished_created (created_at) holding only
  finished rows (sent, partially_sent, failed, suppressed, batched, expired, cancelled), the
  ones retention may delete, oldest first. A row enters it once, when it is settled: not on
  insert or claim, when it is still pending or processing.
- notification_queue: ix_notification_queue_batched_into (batched_into_id, held rows only).
  Deleting a batch's summary row sets its held rows' batched_into_id to NULL (ON DELETE SET
  NULL); without an index each deleted row cost a scan of the whole table (a 5,000-row
  retention batch on 300,000 rows: 90 s, against 0.06 s with it).
- notification_sends: ix_notification_sends_created_at, for retention.
- notification_deliveries: the Expo tickets waiting for a receipt are paged oldest first by
  (created_at, id): ix_notification_deliveries_expo_awaiting_receipt replaces
  ix_notification_deliveries_unconfirmed_expo (created_at alone), with the same predicate;
  ix_notification_deliveries_expo_ticket finds a ticket by its provider message id (a
  receipt is recorded by it), over the same tickets only.

Deliveries go with their notification (retention deletes both in one statement, through
ix_notification_deliveries_notification_id); user_activity, realtime_events and push_tokens
already have the indexes their retention reads (created_at, created_at, last_used).

The indexes are built CONCURRENTLY (outside the migration's transaction), so that a
deployment with months of rows keeps sending while they build.

Revision ID: 85a663000013
Revises: 85a663000012
Create Date: 2026-11-26 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "85a663000013"
down_revision: str | Sequence[str] | None = "85a663000012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINISHED = (
    "status IN ('sent', 'partially_sent', 'failed', 'suppressed', 'batched', 'expired',"
    " 'cancelled')"
)
EXPO_SENT = "provider = 'expo' AND status = 'sent'"
# name -> (table, columns, predicate)
CREATED = {
    "ix_notification_queue_finished_created": ("notification_queue", ["created_at"], FINISHED),
    "ix_notification_queue_batched_into": (
        "notification_queue",
        ["batched_into_id"],
        "batched_into_id IS NOT NULL",
    ),
    "ix_notification_sends_created_at": ("notification_sends", ["created_at"], None),
    "ix_notification_deliveries_expo_awaiting_receipt": (
        "notification_deliveries",
        ["created_at", "id"],
        EXPO_SENT,
    ),
    "ix_notification_deliveries_expo_ticket": (
        "notification_deliveries",
        ["provider_message_id"],
        EXPO_SENT,
    ),
}
REPLACED = (
    "ix_notification_deliveries_unconfirmed_expo",
    "notification_deliveries",
    ["created_at"],
)


def _create(name: str, table: str, columns: list[str], where: str | None) -> None:
    op.create_index(
        name,
        table,
        columns,
        unique=False,
        postgresql_concurrently=True,
        if_not_exists=True,
        **({"postgresql_where": sa.text(where)} if where else {}),
    )


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for name, (table, columns, where) in CREATED.items():
            _create(name, table, columns, where)
        name, table, _ = REPLACED
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        name, table, columns = REPLACED
        _create(name, table, columns, EXPO_SENT)
        for name, (table, _, _) in CREATED.items():
            op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
