"""Activity reports: when it happened (user_activity.occurred_at)

POST /api/v1/activity takes batches that an app kept while offline, so the moment a thing
happened is no longer the moment Pulse stored it (created_at, which retention goes by).
Existing rows happened when they were stored.

Revision ID: 85a663000015
Revises: 85a663000014
Create Date: 2026-11-26 01:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "85a663000015"
down_revision: str | Sequence[str] | None = "85a663000014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user_activity", sa.Column("occurred_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE user_activity SET occurred_at = created_at")
    op.alter_column("user_activity", "occurred_at", nullable=False, server_default=sa.text("now()"))
    op.create_index("ix_user_activity_user_occurred", "user_activity", ["user_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_user_activity_user_occurred", table_name="user_activity")
    op.drop_column("user_activity", "occurred_at")
