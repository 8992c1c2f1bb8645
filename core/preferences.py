"""A user's effective notification preferences: stored overrides merged with defaults.

Pure: takes what is stored and the deployment's defaults, returns what applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from enum import StrEnum

from core.catalog import TYPE_DEFAULTS, NotificationType, QuietBehavior

FLAGS = ("is_enabled", "push_enabled", "email_enabled")


@dataclass(frozen=True)
class TypePreference:
    notification_type: NotificationType
    is_enabled: bool
    push_enabled: bool
    email_enabled: bool
    quiet_hours_behavior: QuietBehavior

    @property
    def allows_push(self) -> bool:
        return self.is_enabled and self.push_enabled


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    timezone: str

    @property
    def is_off(self) -> bool:
        return self.start == self.end


def default_preference(notification_type: NotificationType) -> TypePreference:
    defaults = TYPE_DEFAULTS[notification_type]
    return TypePreference(
        notification_type,
        defaults.is_enabled,
        defaults.push_enabled,
        defaults.email_enabled,
        defaults.quiet_hours,
    )


def effective_preference(
    notification_type: NotificationType, overrides: Mapping[str, bool | str | None]
) -> TypePreference:
    """One type's stored flags and quiet-hours behaviour over its defaults (a stored None
    means "the default")."""
    preference = default_preference(notification_type)
    if not overrides:
        return preference
    behavior = overrides.get("quiet_hours_behavior")
    return TypePreference(
        notification_type,
        **{flag: bool(overrides.get(flag, getattr(preference, flag))) for flag in FLAGS},
        quiet_hours_behavior=QuietBehavior(behavior)
        if behavior
        else preference.quiet_hours_behavior,
    )


def effective_preferences(
    stored: Mapping[NotificationType, Mapping[str, bool | str | None]],
) -> list[TypePreference]:
    """Every type of the catalogue, in catalogue order, with stored flags over the defaults."""
    return [effective_preference(t, stored.get(t, {})) for t in NotificationType]


class TimezoneSource(StrEnum):
    EXPLICIT = "explicit"  # chosen in the settings
    DEVICE = "device"  # the latest device report
    DEFAULT = "default"  # never heard from: DEFAULT_TIMEZONE


def effective_timezone(
    explicit: str | None, device: str | None, default: str
) -> tuple[str, TimezoneSource]:
    """The zone a user's quiet hours and daily cap run in: the one chosen in the settings,
    else the device's latest, else the deployment's default."""
    if explicit:
        return explicit, TimezoneSource.EXPLICIT
    if device:
        return device, TimezoneSource.DEVICE
    return default, TimezoneSource.DEFAULT


def effective_quiet_hours(
    start: time | None, end: time | None, timezone: str, default_start: time, default_end: time
) -> QuietHours:
    """The user's own window when set, else the deployment's default window."""
    if start is None or end is None:
        return QuietHours(default_start, default_end, timezone)
    return QuietHours(start, end, timezone)
