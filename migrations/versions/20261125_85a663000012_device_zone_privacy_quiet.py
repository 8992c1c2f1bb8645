"""users: the device's zone and locale beside the explicit zone, previews and presence
defaults; per-type quiet-hours behaviour

- users.timezone now holds only a zone the user chose in the settings (NULL: none);
  users.device_timezone / device_locale / device_reported_at hold the latest device report
  (register-token, the socket handshake, the HTTP heartbeat). The zone that applies is the
  explicit one, else the device's, else DEFAULT_TIMEZONE. Rows whose zone was the old
  server default 'UTC' become NULL: Pulse cannot tell a chosen UTC from the default, and a
  device report now fills it in.
- users.locale is dropped for device_locale (NULL: never heard, the default locale).
- users.presence_visibility NULL means "the deployment default" (PRESENCE_VISIBILITY_DEFAULT,
  matches unless set); rows holding the old default 'everyone' become NULL.
- users.show_previews: message and match pushes show names and text (default true).
- user_notification_settings.quiet_hours_behavior: defer or quiet per type (NULL: the
  type's default from the catalogue).

Revision ID: 85a663000012
Revises: 85a663000011
Create Date: 2026-11-25 23:50:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "85a663000012"
down_revision: str | Sequence[str] | None = "85a663000011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ZONE_FORMAT = "^[A-Za-z0-9_+/-]{1,64}$"
LOCALE_FORMAT = "^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$"


def upgrade() -> None:
    op.alter_column("users", "timezone", nullable=True, server_default=None)
    op.execute("UPDATE users SET timezone = NULL WHERE timezone = 'UTC'")
    op.add_column("users", sa.Column("device_timezone", sa.String(64), nullable=True))
    op.add_column("users", sa.Column("device_locale", sa.String(35), nullable=True))
    op.add_column(
        "users", sa.Column("device_reported_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute("UPDATE users SET device_locale = locale WHERE locale <> 'en'")
    op.drop_column("users", "locale")
    op.create_check_constraint(
        op.f("ck_users_device_timezone_format"), "users", f"device_timezone ~ '{ZONE_FORMAT}'"
    )
    op.create_check_constraint(
        op.f("ck_users_device_locale_format"), "users", f"device_locale ~ '{LOCALE_FORMAT}'"
    )
    op.alter_column("users", "presence_visibility", nullable=True, server_default=None)
    op.execute("UPDATE users SET presence_visibility = NULL WHERE presence_visibility = 'everyone'")
    op.add_column(
        "users",
        sa.Column("show_previews", sa.Boolean(), nullable=False, server_default=sa.text("true")),
    )
    op.add_column(
        "user_notification_settings",
        sa.Column("quiet_hours_behavior", sa.String(8), nullable=True),
    )
    op.create_check_constraint(
        op.f("ck_user_notification_settings_quiet_hours_behavior_valid"),
        "user_notification_settings",
        "quiet_hours_behavior IN ('defer', 'quiet')",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("ck_user_notification_settings_quiet_hours_behavior_valid"), "user_notification_settings", type_="check"
    )
    op.drop_column("user_notification_settings", "quiet_hours_behavior")
    op.drop_column("users", "show_previews")
    op.execute("UPDATE users SET presence_visibility = 'everyone' WHERE presence_visibility IS NULL")
    op.alter_column("users", "presence_visibility", nullable=False, server_default="everyone")
    op.add_column(
        "users", sa.Column("locale", sa.String(16), nullable=False, server_default="en")
    )
    op.execute("UPDATE users SET locale = left(device_locale, 16) WHERE device_locale IS NOT NULL")
    op.drop_constraint(op.f("ck_users_device_locale_format"), "users", type_="check")
    op.drop_constraint(op.f("ck_users_device_timezone_format"), "users", type_="check")
    op.drop_column("users", "device_reported_at")
    op.drop_column("users", "device_locale")
    op.drop_column("users", "device_timezone")
    op.execute("UPDATE users SET timezone = 'UTC' WHERE timezone IS NULL")
    op.alter_column("users", "timezone", nullable=False, server_default="UTC")
