"""Rules of backend real-time events: who receives one, and which push replaces it when
its receiver has no live connection. Pure: the event's fields in, a decision out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.catalog import PUSH_COUNTERPARTS, MatchStatus, NotificationType, RealtimeEventType
from core.presentation import RESERVED_DATA_KEYS


def recipients(event_type: str, user_id: str | None, target_user_id: str | None) -> list[str]:
    """A match_update goes to both people of the match; every other event to its target."""
    if event_type == RealtimeEventType.MATCH_UPDATE:
        return [u for u in dict.fromkeys((user_id, target_user_id)) if u is not None]
    return [target_user_id] if target_user_id is not None else []


def push_counterpart(event_type: str, payload: Mapping[str, Any]) -> NotificationType | None:
    """The notification type that carries this event to someone who is not connected, or
    None when it has none (a match_update only announces a new match by push)."""
    kind = RealtimeEventType(event_type)
    if kind is RealtimeEventType.MATCH_UPDATE and payload.get("status") != MatchStatus.MATCHED:
        return None
    return PUSH_COUNTERPARTS.get(kind)


def push_data(event_id: str, event_type: str, payload: Mapping[str, Any]) -> dict[str, str]:
    """The push's data: the event's id and type, and the payload's short scalar fields
    (what the app needs to open the right screen)."""
    data = {"event_id": event_id, "event_type": event_type}
    for key, value in payload.items():
        if str(key) in RESERVED_DATA_KEYS:
            continue
        if isinstance(value, (str, int, float, bool)) and len(str(value)) <= 200:
            data[str(key)[:64]] = str(value)
        if len(data) >= 20:
            break
    return data
