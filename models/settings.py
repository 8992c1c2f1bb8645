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

from core.catalog import NotificationType
from core.preferences import (
    FLAGS,
    QuietHours,
    TypePreference,
    default_preference,
    effective_preferences,
    effective_quiet_hours,
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
        Index("ix_user_notification_settings_notification_type", "notification_type"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    notification_type: Mapped[str] = mapped_column(String(32))
    is_enabled: Mapped[bool] = mapped_column(Boolean)
    push_enabled: Mapped[bool] = mapped_column(Boolean)
    email_enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


def stored_preferences(session: Session, user_id: str) -> dict[NotificationType, dict[str, bool]]:
    rows = session.scalars(
        select(UserNotificationSetting).where(UserNotificationSetting.user_id == user_id)
    )
    return {
        NotificationType(row.notification_type): {flag: getattr(row, flag) for flag in FLAGS}
        for row in rows
    }


def save_preferences(
    session: Session, user_id: str, changes: Mapping[NotificationType, Mapping[str, bool]]
) -> None:
    """Upsert the changed flags of each type (unchanged flags keep their stored or default
    value). The caller commits."""
    for notification_type, flags in changes.items():
        if not flags:
            continue
        defaults = default_preference(notification_type)
        statement = insert(UserNotificationSetting).values(
            user_id=user_id,
            notification_type=notification_type.value,
            **{flag: flags.get(flag, getattr(defaults, flag)) for flag in FLAGS},
        )
        session.execute(
            statement.on_conflict_do_update(
                constraint="uq_user_notification_settings_user_type",
                set_={**dict(flags), "updated_at": func.now()},
            )
        )


@dataclass(frozen=True)
class UserSettings:
    preferences: list[TypePreference]
    quiet_hours: QuietHours


def read_settings(
    session: Session, user_id: str, default_start: time, default_end: time
) -> UserSettings:
    user = session.get(User, user_id)
    if user is None:
        raise LookupError(user_id)
    return UserSettings(
        preferences=effective_preferences(stored_preferences(session, user_id)),
        quiet_hours=effective_quiet_hours(
            user.quiet_hours_start, user.quiet_hours_end, user.timezone, default_start, default_end
        ),
    )


def update_settings(
    session: Session,
    user_id: str,
    *,
    preference_changes: Mapping[NotificationType, Mapping[str, bool]],
    quiet_hours_changes: Mapping[str, Any],
    default_start: time,
    default_end: time,
) -> None:
    """Apply a partial update of flags and quiet hours in one transaction, and commit.

    Quiet hours are stored as a pair: changing only the start keeps the effective end.
    """
    save_preferences(session, user_id, preference_changes)
    if quiet_hours_changes:
        user = session.get(User, user_id, with_for_update=True)
        if user is None:
            raise LookupError(user_id)
        current = effective_quiet_hours(
            user.quiet_hours_start, user.quiet_hours_end, user.timezone, default_start, default_end
        )
        user.quiet_hours_start = quiet_hours_changes.get("start", current.start)
        user.quiet_hours_end = quiet_hours_changes.get("end", current.end)
        user.timezone = quiet_hours_changes.get("timezone", current.timezone)
    session.commit()
