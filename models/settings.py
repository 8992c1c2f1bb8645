"""Per-user, per-type notification preferences.

A row exists only where the user changed something; the catalogue's defaults
(core.catalog.TYPE_DEFAULTS) fill in the rest when settings are read.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.catalog import NotificationType, QuietBehavior
from core.preferences import (
    FLAGS,
    QuietHours,
    TimezoneSource,
    TypePreference,
    default_preference,
    effective_preferences,
    effective_quiet_hours,
    effective_timezone,
)
from models.base import Base, created_at, one_of, updated_at, uuid_pk
from models.users import User


class UserNotificationSetting(Base):
    __tablename__ = "user_notification_settings"
    __table_args__ = (
        UniqueConstraint(
            "user_id", "notification_type", name="uq_user_notification_settings_user_type"
        ),
        one_of("notification_type", NotificationType),
        one_of("quiet_hours_behavior", QuietBehavior),
        Index("ix_user_notification_settings_notification_type", "notification_type"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    notification_type: Mapped[str] = mapped_column(String(32))
    is_enabled: Mapped[bool] = mapped_column(Boolean)
    push_enabled: Mapped[bool] = mapped_column(Boolean)
    email_enabled: Mapped[bool] = mapped_column(Boolean)
    # NULL: the type's default (core.catalog.TYPE_DEFAULTS).
    quiet_hours_behavior: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


SETTING_COLUMNS = (*FLAGS, "quiet_hours_behavior")


def stored_preferences(
    session: Session, user_id: str
) -> dict[NotificationType, dict[str, bool | str | None]]:
    rows = session.scalars(
        select(UserNotificationSetting).where(UserNotificationSetting.user_id == user_id)
    )
    return {
        NotificationType(row.notification_type): {c: getattr(row, c) for c in SETTING_COLUMNS}
        for row in rows
    }


def save_preferences(
    session: Session,
    user_id: str,
    changes: Mapping[NotificationType, Mapping[str, bool | str | None]],
) -> None:
    """Upsert the changed columns of each type (unchanged flags keep their stored or default
    value; an unset quiet_hours_behavior follows the type's default). The caller commits."""
    for notification_type, columns in changes.items():
        if not columns:
            continue
        defaults = default_preference(notification_type)
        statement = insert(UserNotificationSetting).values(
            user_id=user_id,
            notification_type=notification_type.value,
            **{flag: columns.get(flag, getattr(defaults, flag)) for flag in FLAGS},
            quiet_hours_behavior=columns.get("quiet_hours_behavior"),
        )
        session.execute(
            statement.on_conflict_do_update(
                constraint="uq_user_notification_settings_user_type",
                set_={**dict(columns), "updated_at": func.now()},
            )
        )


@dataclass(frozen=True)
class Defaults:
    """The deployment's defaults a user's settings fall back on."""

    quiet_hours_start: time
    quiet_hours_end: time
    timezone: str
    presence_visibility: str


@dataclass(frozen=True)
class UserSettings:
    preferences: list[TypePreference]
    quiet_hours: QuietHours
    timezone_source: TimezoneSource
    presence_visibility: str
    show_previews: bool


def _quiet_hours(user: User, defaults: Defaults) -> tuple[QuietHours, TimezoneSource]:
    zone, source = effective_timezone(user.timezone, user.device_timezone, defaults.timezone)
    quiet = effective_quiet_hours(
        user.quiet_hours_start,
        user.quiet_hours_end,
        zone,
        defaults.quiet_hours_start,
        defaults.quiet_hours_end,
    )
    return quiet, source


def read_settings(session: Session, user_id: str, defaults: Defaults) -> UserSettings:
    user = session.get(User, user_id)
    if user is None:
        raise LookupError(user_id)
    quiet, source = _quiet_hours(user, defaults)
    return UserSettings(
        preferences=effective_preferences(stored_preferences(session, user_id)),
        quiet_hours=quiet,
        timezone_source=source,
        presence_visibility=user.presence_visibility or defaults.presence_visibility,
        show_previews=user.show_previews,
    )


def update_settings(
    session: Session,
    user_id: str,
    *,
    preference_changes: Mapping[NotificationType, Mapping[str, bool | str | None]],
    quiet_hours_changes: Mapping[str, Any],
    show_previews: bool | None,
    defaults: Defaults,
) -> None:
    """Apply a partial update of per-type settings, quiet hours and previews in one
    transaction, and commit.

    Quiet hours are stored as a pair: changing only the start keeps the effective end. A
    `timezone` of None forgets the chosen zone: the device's applies again.
    """
    save_preferences(session, user_id, preference_changes)
    if quiet_hours_changes or show_previews is not None:
        user = session.get(User, user_id, with_for_update=True)
        if user is None:
            raise LookupError(user_id)
        if quiet_hours_changes:
            current, _ = _quiet_hours(user, defaults)
            user.quiet_hours_start = quiet_hours_changes.get("start", current.start)
            user.quiet_hours_end = quiet_hours_changes.get("end", current.end)
            if "timezone" in quiet_hours_changes:
                user.timezone = quiet_hours_changes["timezone"]
        if show_previews is not None:
            user.show_previews = show_previews
    session.commit()
