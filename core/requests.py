"""What a caller asks Pulse to do, once validated: a send (notifications for some users or
all) and a real-time event. Plain frozen values, made by intake's schemas and written by
models' accept functions; no validation and no I/O here."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.catalog import NotificationType, Priority, RealtimeEventType


@dataclass(frozen=True)
class SendRequest:
    notification_type: NotificationType
    priority: Priority
    data: dict[str, Any]
    title: str | None = None
    body: str | None = None
    user_ids: tuple[str, ...] = ()
    all_users: bool = False
    platforms: tuple[str, ...] | None = None
    scheduled_for: datetime | None = None
    expires_at: datetime | None = None
    idempotency_key: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "notification_type": self.notification_type.value,
            "priority": self.priority.value,
            "data": self.data,
            "title": self.title,
            "body": self.body,
            "user_ids": list(self.user_ids),
            "all_users": self.all_users,
            "platforms": list(self.platforms) if self.platforms is not None else None,
            "scheduled_for": self.scheduled_for.isoformat() if self.scheduled_for else None,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SendRequest:
        return cls(
            notification_type=NotificationType(raw["notification_type"]),
            priority=Priority(raw["priority"]),
            data=raw["data"],
            title=raw["title"],
            body=raw["body"],
            user_ids=tuple(raw["user_ids"]),
            all_users=raw["all_users"],
            platforms=tuple(raw["platforms"]) if raw["platforms"] is not None else None,
            scheduled_for=_parse(raw["scheduled_for"]),
            expires_at=_parse(raw["expires_at"]),
        )

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.as_json(), sort_keys=True).encode()).hexdigest()


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class MatchChange:
    user_a_id: str
    user_b_id: str
    changes: dict[str, Any]


@dataclass(frozen=True)
class EventRequest:
    event_type: RealtimeEventType
    user_id: str | None
    target_user_ids: tuple[str, ...]
    payload: dict[str, Any] = field(default_factory=dict)
    match: MatchChange | None = None


@dataclass(frozen=True)
class ActivityReport:
    """One thing a user did, as the app (or a service on the user's behalf) reported it."""

    user_id: str
    activity_type: str
    occurred_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)
