"""Putting work on the queues, after the rows are committed; and `notify`, the entry point
for the cluster's other backend services.

A failed enqueue loses nothing: the rows are in PostgreSQL and the outbox sweep finds them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue

from core.catalog import Priority
from intake.queues import queue
from models.db import db
from models.sends import Accepted, accept_send, chunks

log = logging.getLogger(__name__)

DELIVERY_JOB_TIMEOUT = 300
KEEP_RESULTS_SECONDS = 3600


def enqueue_deliveries(
    connection: redis.Redis, due: Mapping[Priority, Sequence[uuid.UUID]], chunk_size: int
) -> int:
    """One delivery job per chunk of ids, on the queue named after the priority; returns
    how many jobs were enqueued (0 if Redis is unreachable: the sweep will do it)."""
    from jobs.delivery import deliver_notifications

    enqueued = 0
    try:
        for priority, ids in due.items():
            target = queue(priority, connection)
            jobs = [
                Queue.prepare_data(
                    deliver_notifications,
                    args=([str(i) for i in chunk],),
                    timeout=DELIVERY_JOB_TIMEOUT,
                    # The database is the record of what happened: keeping RQ results would
                    # only cost Redis writes per job.
                    result_ttl=0,
                    failure_ttl=7 * 24 * 3600,
                )
                for chunk in chunks(list(ids), chunk_size)
            ]
            if jobs:
                target.enqueue_many(jobs)
                enqueued += len(jobs)
    except redis.RedisError as exc:
        log.warning("event=enqueue_failed error_type=%s left_for=sweep", type(exc).__name__)
    return enqueued


def enqueue_fan_out(connection: redis.Redis, send_id: uuid.UUID, after_user_id: str | None) -> None:
    from jobs.fanout import fan_out_send

    try:
        queue(Priority.NORMAL, connection).enqueue(
            fan_out_send, str(send_id), after_user_id, job_timeout=DELIVERY_JOB_TIMEOUT
        )
    except redis.RedisError as exc:
        log.warning("event=fan_out_enqueue_failed send_id=%s error=%s", send_id, type(exc).__name__)


def dispatch(connection: redis.Redis, accepted: Accepted, chunk_size: int) -> None:
    """Everything an accepted send needs enqueued, after its commit."""
    if accepted.replayed:
        return
    if accepted.fan_out:
        enqueue_fan_out(connection, accepted.send_id, None)
    enqueue_deliveries(connection, accepted.due, chunk_size)


def dispatch_page(
    connection: redis.Redis,
    send_id: uuid.UUID,
    ids: Sequence[uuid.UUID],
    next_after: str | None,
    priority: Priority,
    chunk_size: int,
) -> None:
    """After one fan-out page is committed: its deliveries, then the next page."""
    enqueue_deliveries(connection, {priority: ids}, chunk_size)
    if next_after is not None:
        enqueue_fan_out(connection, send_id, next_after)


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
    """Send a notification from another backend service, in-process: the same validation
    and the same rows as POST /api/v1/notifications/send; returns the same answer.

    Raises marshmallow.ValidationError (with .messages naming the fields) on bad input.
    """
    from api.notifications.send_schemas import build_send_request
    from runtime import current_runtime

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
    request = build_send_request(payload, now=datetime.now(UTC))
    with db.session_scope() as session:
        accepted = accept_send(session, request, requested_by, datetime.now(UTC))
    dispatch(runtime.redis, accepted, runtime.settings.notification_batch_size)
    return accepted.response


# --- Real-time events ------------------------------------------------------------------

BROADCAST_CHUNK = 100


def enqueue_broadcast(connection: redis.Redis, event_ids: Sequence[uuid.UUID]) -> int:
    """One broadcast job per chunk of event ids on the high queue (0 if Redis is down: the
    events sweep re-enqueues them)."""
    from jobs.events import broadcast_events

    enqueued = 0
    try:
        target = queue(Priority.HIGH, connection)
        for chunk in chunks([str(i) for i in event_ids], BROADCAST_CHUNK):
            target.enqueue(broadcast_events, chunk, job_timeout=60, result_ttl=KEEP_RESULTS_SECONDS)
            enqueued += 1
    except redis.RedisError as exc:
        log.warning("event=broadcast_enqueue_failed error=%s left_for=sweep", type(exc).__name__)
    return enqueued


def publish_event(
    event_type: str,
    target_user_ids: Sequence[str] | str,
    *,
    user_id: str | None = None,
    payload: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Publish a real-time event from another backend service, in-process: the same
    validation and rows as POST /api/v1/realtime/events, then the broadcast job; returns
    the same answer. A match_update names its two people as user_id and the target.

    Raises marshmallow.ValidationError (with .messages naming the fields) on bad input.
    """
    from api.realtime.schemas import build_event_request
    from jobs.events import accept_event, after_accept
    from runtime import current_runtime

    runtime = current_runtime()
    raw: dict[str, Any] = {"event_type": event_type, "payload": dict(payload or {})}
    if isinstance(target_user_ids, str):
        raw["target_user_id"] = target_user_ids
    else:
        raw["target_user_ids"] = list(target_user_ids)
    if user_id is not None:
        raw["user_id"] = user_id
    request = build_event_request(raw)
    with db.session_scope() as session:
        accepted = accept_event(session, request)
    after_accept(runtime.redis, runtime.settings.redis_key_prefix, accepted)
    return accepted.response
