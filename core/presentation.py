"""How a push presents itself on the phone, per type (core.catalog.TYPE_DEFAULTS): the
Android channel, the iOS interruption level and the sound; and the quiet variant that
quiet hours use for the types that deliver quietly; and the screen a tap opens
(`data.action`). Pure: no provider's wire shape here (each provider module maps these onto
its own fields)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.catalog import TYPE_DEFAULTS, AndroidChannel, InterruptionLevel, NotificationType

DEFAULT_SOUND = "default"
ACTION_KEY = "action"
# expo-notifications reads an app's data from this key (providers/app_data.py); APNs owns
# `aps`. A sender's data may use neither.
APP_DATA_KEY = "body"
RESERVED_DATA_KEYS = frozenset({"aps", APP_DATA_KEY})


@dataclass(frozen=True)
class Presentation:
    channel: AndroidChannel
    interruption_level: InterruptionLevel
    sound: str | None  # None: silent
    quiet: bool  # no sound, no vibration, does not light the screen


def presentation(notification_type: NotificationType, *, quiet: bool) -> Presentation:
    """The type's channel and interruption level, or, delivered quietly, the low-importance
    quiet channel, passive interruption and no sound."""
    if quiet:
        return Presentation(AndroidChannel.QUIET, InterruptionLevel.PASSIVE, None, True)
    defaults = TYPE_DEFAULTS[notification_type]
    return Presentation(defaults.channel, defaults.interruption, DEFAULT_SOUND, False)


def with_action(notification_type: NotificationType, data: Mapping[str, Any]) -> dict[str, Any]:
    """The data with `action`, the screen the app opens when the push is tapped: the one the
    sender gave, else the type's from the catalogue (open_conversation, open_match, ...)."""
    if data.get(ACTION_KEY):
        return dict(data)
    return {**data, ACTION_KEY: TYPE_DEFAULTS[notification_type].action.value}
