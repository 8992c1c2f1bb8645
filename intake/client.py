"""Pulse for the cluster's other backend services, in-process: read this first.

    from intake.client import notify, publish_event

    notify("new_message", ["u1"], data={"sender_name": "Alex"}, requested_by="chat-service")
    publish_event("match_update", "u2", user_id="u1", payload={"status": "matched"})

Each call validates exactly as the HTTP API does (POST /api/v1/notifications/send and
POST /api/v1/realtime/events), writes the same rows, enqueues the same jobs after the
commit, and returns the same answer as the HTTP response's `data`. Bad input raises
marshmallow.ValidationError, whose `.messages` names the fields; nothing is written then.

Inside the API, a job or the gateway it uses that process's runtime. A process of your
own calls `runtime.bootstrap()` once at start-up (it reads the same environment variables
as the worker: DATABASE_URL, REDIS_URL, the keys).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from intake.dispatch import dispatch, dispatch_events
from intake.events import build_event_request
from intake.sends import build_send_request
from models.events import accept_event
from models.sends import accept_send
from runtime import current_runtime

__all__ = ["notify", "publish_event"]


def notify(
    notification_type: str,
    user_ids: Sequence[str] = (),
    *,
    all_users: bool = False,
    title: str | None = None,
    body: str | None = None,
    data: Mapping[str, Any] | None = None,
    priority: str | None = None,
    platforms: Sequence[str] | None = None,
    scheduled_for: datetime | None = None,
    expires_at: datetime | None = None,
    idempotency_key: str | None = None,
    requested_by: str = "service",
) -> dict[str, Any]:
    """Send a notification to `user_ids` (or `all_users=True`); returns
    `{send_id, count, notification_ids, status}`. The same `idempotency_key` from the same
    `requested_by` returns the first answer and creates nothing."""
    runtime = current_runtime()
    payload: dict[str, Any] = {
        "notification_type": notification_type,
        "target": {"all_users": True} if all_users else {"user_ids": list(user_ids)},
    }
    optional = {
        "title": title,
        "body": body,
        "data": dict(data) if data is not None else None,
        "priority": priority,
        "scheduled_for": scheduled_for.isoformat() if scheduled_for else None,
        "expires_at": expires_at.isoformat() if expires_at else None,
        "idempotency_key": idempotency_key,
    }
    payload.update({key: value for key, value in optional.items() if value is not None})
    if platforms is not None:
        payload["target"]["platforms"] = list(platforms)
    now = datetime.now(UTC)
    request = build_send_request(payload, now=now)
    with runtime.db.session_scope() as session:
        accepted = accept_send(session, request, requested_by, now)
    dispatch(runtime.redis, accepted, runtime.settings.delivery.batch_size)
    return accepted.response


def publish_event(
    event_type: str,
    target_user_ids: Sequence[str] | str,
    *,
    user_id: str | None = None,
    payload: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Publish a real-time event to its target(s): connected ones get it over Socket.IO,
    the others its push counterpart where it has one. A match_update names its two people
    as `user_id` and the target, and upserts their match. Returns
    `{event_ids, count, status}` (and `match_id` for a match_update)."""
    runtime = current_runtime()
    raw: dict[str, Any] = {"event_type": event_type, "payload": dict(payload or {})}
    if isinstance(target_user_ids, str):
        raw["target_user_id"] = target_user_ids
    else:
        raw["target_user_ids"] = list(target_user_ids)
    if user_id is not None:
        raw["user_id"] = user_id
    request = build_event_request(raw)
    with runtime.db.session_scope() as session:
        accepted = accept_event(session, request)
    dispatch_events(runtime, accepted)
    return accepted.response
