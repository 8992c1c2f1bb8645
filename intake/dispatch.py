"""Putting work on the queues, after the rows are committed.

Jobs are named by their dotted path, so that nothing here imports jobs/ (jobs import this
module to enqueue their follow-ups). A failed enqueue loses nothing: the rows are in
PostgreSQL and the outbox sweep (or the events sweep) finds them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence

import redis
from rq import Queue

from core.catalog import Priority
from intake.queues import queue
from models.events import AcceptedEvents
from models.sends import Accepted, chunks
from runtime import Runtime

log = logging.getLogger(__name__)

DELIVER_NOTIFICATIONS = "jobs.delivery.deliver_notifications"
FAN_OUT_SEND = "jobs.fanout.fan_out_send"
BROADCAST_EVENTS = "jobs.events.broadcast_events"

DELIVERY_JOB_TIMEOUT = 300
BROADCAST_JOB_TIMEOUT = 60
BROADCAST_CHUNK = 100
KEEP_RESULTS_SECONDS = 3600
KEEP_FAILED_SECONDS = 7 * 24 * 3600


def enqueue_deliveries(
    connection: redis.Redis, due: Mapping[Priority, Sequence[uuid.UUID]], chunk_size: int
) -> int:
    """One delivery job per chunk of ids, on the queue named after the priority; returns
    how many jobs were enqueued (0 if Redis is unreachable: the sweep will do it)."""
    enqueued = 0
    try:
        for priority, ids in due.items():
            jobs = [
                Queue.prepare_data(
                    DELIVER_NOTIFICATIONS,
                    args=([str(i) for i in chunk],),
                    timeout=DELIVERY_JOB_TIMEOUT,
                    # The database is the record of what happened: keeping RQ results would
                    # only cost Redis writes per job.
                    result_ttl=0,
                    failure_ttl=KEEP_FAILED_SECONDS,
                )
                for chunk in chunks(list(ids), chunk_size)
            ]
            if jobs:
                queue(priority, connection).enqueue_many(jobs)
                enqueued += len(jobs)
    except redis.RedisError as exc:
        log.warning("event=enqueue_failed error_type=%s left_for=sweep", type(exc).__name__)
    return enqueued


def enqueue_fan_out(connection: redis.Redis, send_id: uuid.UUID, after_user_id: str | None) -> None:
    """The next page of an all-users send (a lost one is resumed by the outbox sweep)."""
    try:
        queue(Priority.NORMAL, connection).enqueue(
            FAN_OUT_SEND, str(send_id), after_user_id, job_timeout=DELIVERY_JOB_TIMEOUT
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


def enqueue_broadcast(connection: redis.Redis, event_ids: Sequence[uuid.UUID]) -> int:
    """One broadcast job per chunk of event ids on the high queue (0 if Redis is down: the
    events sweep re-enqueues them)."""
    enqueued = 0
    try:
        target = queue(Priority.HIGH, connection)
        for chunk in chunks([str(i) for i in event_ids], BROADCAST_CHUNK):
            target.enqueue(
                BROADCAST_EVENTS,
                chunk,
                job_timeout=BROADCAST_JOB_TIMEOUT,
                result_ttl=KEEP_RESULTS_SECONDS,
            )
            enqueued += 1
    except redis.RedisError as exc:
        log.warning("event=broadcast_enqueue_failed error=%s left_for=sweep", type(exc).__name__)
    return enqueued


def dispatch_events(runtime: Runtime, accepted: AcceptedEvents) -> None:
    """After an event's commit: forget the cached conversations and partners a match change
    touched, then enqueue the broadcast."""
    for conversation_id in accepted.conversations_changed:
        runtime.typing.forget_conversation(conversation_id)
    if accepted.match_people:
        runtime.presence.forget_partners(accepted.match_people)
    enqueue_broadcast(runtime.redis, accepted.event_ids)
