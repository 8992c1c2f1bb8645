"""Time-ordered row ids: UUID version 7 from the database too

Rows the database names itself (delivery attempts, realtime events, sends made in SQL)
got random UUIDs (gen_random_uuid, version 4): every insert touched a random page of the
primary-key index, and the hot tables' indexes grew and fell out of cache over long runs.
`uuid_v7()` puts the Unix milliseconds in the first 48 bits (RFC 9562), so inserts append
to the index's right edge, as the ids Pulse makes in Python already do
(models.base.new_id). PostgreSQL 18 has uuidv7(); 15 and 16 do not, hence the function.

Revision ID: 85a663000014
Revises: 85a663000013
Create Date: 2026-11-26 00:30:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "85a663000014"
down_revision: str | Sequence[str] | None = "85a663000013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "matches",
    "notification_deliveries",
    "notification_queue",
    "notification_sends",
    "push_tokens",
    "realtime_events",
    "user_notification_settings",
)

# A version 4 UUID with its first 48 bits replaced by the Unix milliseconds and its version
# nibble turned from 4 (0100) into 7 (0111) by setting bits 52 and 53; the variant stays.
UUID_V7 = """
CREATE FUNCTION uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT encode(
    set_bit(
      set_bit(
        overlay(uuid_send(gen_random_uuid())
                placing substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                FROM 1 FOR 6),
        52, 1),
      53, 1),
    'hex')::uuid
$$
"""


def upgrade() -> None:
    op.execute(UUID_V7)
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT uuid_v7()")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT gen_random_uuid()")
    op.execute("DROP FUNCTION uuid_v7()")
