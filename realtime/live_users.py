"""What the gateway knows that delivery needs: who is active in the app right now, and the
in-app copy of a notification for the users who have a live connection.

Reads presence and live connections from Redis (pipelined: a constant number of round
trips per chunk); emits through the Socket.IO message queue. Never decides anything:
core/delivery_rules.py does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from core.catalog import PresenceState, RealtimeEventType, user_room
from core.presence import aggregate
from core.timefmt import iso
from models.outbox import Claimed
from runtime import Runtime

log = logging.getLogger(__name__)


def active_in_app(runtime: Runtime, user_ids: Sequence[str]) -> Callable[[str], bool]:
    """A predicate: is this user online (active on a live connection) now?"""
    settings = runtime.settings
    now = datetime.fromtimestamp(time.time(), UTC)
    facts = runtime.presence.read_many(list(user_ids))
    online = {
        user_id
        for user_id, (_, user_facts) in facts.items()
        if aggregate(
            user_facts,
            now,
            timedelta(seconds=settings.realtime.away_after_seconds),
            timedelta(seconds=settings.realtime.offline_after_seconds),
        ).status
        is PresenceState.ONLINE
    }
    return online.__contains__


def in_app_payload(notification: Claimed) -> dict[str, Any]:
    return {
        "id": str(notification.id),
        "notification_type": notification.notification_type,
        "title": notification.title,
        "body": notification.body,
        "data": notification.data,
        "priority": notification.priority,
        "created_at": iso(notification.created_at),
    }


def send_in_app_copies(runtime: Runtime, notifications: Sequence[Claimed]) -> int:
    """Emit `notification` to the room of every user with a live connection; returns how
    many were emitted. A failure here never stops the push."""
    try:
        live = runtime.connections.live_users([n.user_id for n in notifications])
        emitted = 0
        for notification in notifications:
            if notification.user_id in live:
                runtime.emit(
                    RealtimeEventType.NOTIFICATION.value,
                    in_app_payload(notification),
                    to=user_room(notification.user_id),
                )
                emitted += 1
        return emitted
    except Exception:
        log.exception("event=in_app_copy_failed")
        return 0
