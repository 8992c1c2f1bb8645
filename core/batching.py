"""Which notifications are batched together, and what the summary says.

Pure. Similar notifications (same user, type and group, e.g. one conversation) inside a
window are merged: the first goes out at once, the rest become one summary when the
window closes. Critical notifications and one-off types are never batched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from core.catalog import NotificationType, Priority

T = NotificationType
# The data field that names a batch's group; None: every notification of the type is alike.
BATCH_GROUP: dict[NotificationType, str | None] = {
    T.NEW_MESSAGE: "conversation_id",
    T.LIKE_RECEIVED: None,
    T.SUPER_LIKE_RECEIVED: None,
    T.PROFILE_VIEW: None,
    T.MATCH_EXPIRING: "match_id",
}
COUNT_FIELD = "batch_count"
SUMMARY_REASON = "batch_summary"
HELD_REASON = "batched"


def batch_key(
    user_id: str, notification_type: NotificationType, priority: Priority, data: Mapping[str, Any]
) -> str | None:
    """The key similar notifications share, or None when this one is never batched.

    It is also the APNs apns-collapse-id and the FCM collapse_key (hence short)."""
    if priority is Priority.CRITICAL or notification_type not in BATCH_GROUP:
        return None
    field = BATCH_GROUP[notification_type]
    group = str(data.get(field) or "") if field else ""
    if field and not group:
        return None  # a message without a conversation has nothing to be merged with
    key = ":".join(part for part in (notification_type.value, user_id, group) if part)
    if len(key.encode()) > 64:
        key = f"{notification_type.value}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"
    return key


def is_summary(data: Mapping[str, Any]) -> bool:
    """A row that carries a batch's summary (it holds the batch's count)."""
    return COUNT_FIELD in data
