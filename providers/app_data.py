"""Where the app finds a push's data when it is sent straight through APNs or FCM (not
through Expo's service), for a native app and for an app built on expo-notifications alike.

A native app reads the data's keys where they are: beside `aps` in the APNs payload, as
the FCM message's `data` keys. expo-notifications reads only one key, `body`: on iOS the
payload's `body` as an object (`userInfo["body"]`, NotificationRecords.swift
`serializedNotificationData`), on Android the FCM data key `body` as a JSON string
(NotificationData.kt `body`, parsed with `JSONObject`). So the data goes both ways: its
keys at the top, and a copy of it under `body` (docs/app-developers.md).

The copy doubles the data's bytes. When both no longer fit the provider's 4 KB, the copy
keeps the ids only (core.previews.ids_only: the keys that open the right screen), and the
top-level keys stay whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.presentation import APP_DATA_KEY as EXPO_DATA_KEY
from core.previews import ids_only


def with_app_copy(data: Mapping[str, Any], *, compact: bool = False) -> dict[str, Any]:
    """The data's keys and, under `body`, its copy for expo-notifications (ids only when
    `compact`). Raises ValueError when the data has its own `body` key."""
    if EXPO_DATA_KEY in data:
        raise ValueError(f"ReservedDataKey: {EXPO_DATA_KEY!r} carries the data for Expo apps")
    return {**data, EXPO_DATA_KEY: ids_only(data) if compact else dict(data)}
