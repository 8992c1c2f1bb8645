"""The RQ queues, one per priority, drained critical first; and the one way to get them.

Queue names are the priority names, so that rq-dashboard shows the same words as the API.
"""

from __future__ import annotations

import redis
from rq import Queue

from core.catalog import Priority

# Workers listen in this order: RQ takes from the first non-empty queue.
QUEUE_ORDER: tuple[Priority, ...] = (
    Priority.CRITICAL,
    Priority.HIGH,
    Priority.NORMAL,
    Priority.LOW,
)
MAINTENANCE_QUEUE = Priority.LOW


def queue(priority: Priority, connection: redis.Redis) -> Queue:
    return Queue(priority.value, connection=connection)


def all_queues(connection: redis.Redis) -> list[Queue]:
    return [queue(priority, connection) for priority in QUEUE_ORDER]
