"""Small builders of push messages and provider-shaped device tokens for provider tests."""

from __future__ import annotations

from typing import Any

from core.catalog import Priority
from providers.base import PushMessage


def apns_token(n: int) -> str:
    return f"{n:064x}"


def fcm_token(n: int) -> str:
    return f"c{n:07d}:APA91b" + "E" * 140


def expo_token(n: int) -> str:
    return f"ExponentPushToken[{n:022d}]"


def push(token: str, ref: str = "d-1", **fields: Any) -> PushMessage:
    values: dict[str, Any] = {
        "title": "New match",
        "body": "You and Alex liked each other",
        "data": {"type": "new_match", "match_id": "m-42"},
        "priority": Priority.HIGH,
    }
    values.update(fields)
    return PushMessage(ref=ref, token=token, **values)
