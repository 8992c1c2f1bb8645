"""The broadcast job of backend real-time events: it sends each event to its receivers'
rooms, or, for a receiver with no live connection, hands its push counterpart to the
pipeline; and the sweep that re-enqueues events whose job was lost.

A job takes ids, locks the unprocessed rows, and is safe to run twice (a push fallback has
an idempotency key). Payloads are never logged.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import ValidationError

from core.catalog import RealtimeEventType, user_room
from core.realtime_events import push_counterpart, push_data, recipients
from core.retention import cutoffs
from core.timefmt import iso, iso_from_timestamp
from intake.client import notify
from intake.dispatch import enqueue_broadcast
from models.db import db
from models.events import (
    RealtimeEvent,
    claim_unprocessed,
    mark_processed,
    purge_processed,
    unprocessed_before,
)
from realtime.presence import publish_presence
from runtime import Runtime, current_runtime

log = logging.getLogger(__name__)

REENQUEUE_AFTER = timedelta(seconds=30)
# Retention of processed events (REALTIME_EVENTS_RETENTION_DAYS): this sweep is the one
# path that removes them, at most this many rows a sweep (every 30 s), oldest first.
PURGE_BATCH = 5_000


def message(row: RealtimeEvent) -> dict[str, Any]:
    """What a client receives, under the event's type as the Socket.IO event name."""
    return {
        "id": str(row.id),
        "event_type": row.event_type,
        "user_id": row.user_id,
        "target_user_id": row.target_user_id,
        "payload": row.payload,
        "created_at": iso(row.created_at),
    }


def _push_instead(row: RealtimeEvent, recipient: str) -> bool:
    kind = push_counterpart(row.event_type, row.payload)
    if kind is None:
        return False
    try:
        notify(
            kind.value,
            [recipient],
            data=push_data(str(row.id), row.event_type, row.payload),
            idempotency_key=f"realtime-event:{row.id}:{recipient}"[:128],
            requested_by="realtime",
        )
    except ValidationError as exc:
        log.warning(
            "event=push_fallback_refused event_id=%s fields=%s", row.id, ",".join(exc.messages)
        )
        return False
    return True


def deliver(ctx: Runtime, row: RealtimeEvent) -> dict[str, int]:
    counts = {"emitted": 0, "pushed": 0, "dropped": 0}
    body = message(row)
    for recipient in recipients(row.event_type, row.user_id, row.target_user_id):
        if ctx.connections.live_sids(recipient):
            body["emitted_at"] = iso_from_timestamp(time.time())
            ctx.emit(row.event_type, body, to=user_room(recipient))
            counts["emitted"] += 1
        elif _push_instead(row, recipient):
            counts["pushed"] += 1
        else:
            counts["dropped"] += 1
    return counts


def broadcast_events(event_ids: list[str]) -> dict[str, int]:
    """Send each unprocessed event to its receivers (or push it to the offline ones), then
    mark it processed. Rows another job holds, or already processed, are skipped."""
    ctx = current_runtime()
    totals = {"events": 0, "emitted": 0, "pushed": 0, "dropped": 0}
    matched_people: set[str] = set()
    with db.session_scope() as session:
        rows = claim_unprocessed(session, [uuid.UUID(i) for i in event_ids])
        for row in rows:
            for name, value in deliver(ctx, row).items():
                totals[name] += value
            if row.event_type == RealtimeEventType.MATCH_UPDATE:
                matched_people.update(recipients(row.event_type, row.user_id, row.target_user_id))
        mark_processed(session, rows, datetime.now(UTC))
        totals["events"] = len(rows)
    # Who may see whose presence may have changed with the match.
    for user_id in matched_people:
        publish_presence(ctx, user_id, force=True)
    log.info(
        "event=realtime_broadcast events=%d emitted=%d pushed=%d dropped=%d",
        totals["events"],
        totals["emitted"],
        totals["pushed"],
        totals["dropped"],
    )
    return totals


def sweep_realtime_events(limit: int = 500, purge_batch: int = PURGE_BATCH) -> int:
    """Periodic: re-enqueue events whose broadcast job was lost; purge processed ones older
    than REALTIME_EVENTS_RETENTION_DAYS (a bounded batch a sweep, its own transaction)."""
    ctx = current_runtime()
    now = datetime.now(UTC)
    with db.session_scope() as session:
        ids = unprocessed_before(session, now - REENQUEUE_AFTER, limit)
    with db.session_scope() as session:
        purged = purge_processed(
            session, cutoffs(ctx.settings.retention, now).realtime_events, purge_batch
        )
    if ids:
        enqueue_broadcast(ctx.redis, ids)
        log.info("event=realtime_events_reenqueued count=%d", len(ids))
    if purged:
        log.info("event=realtime_events_purged count=%d", purged)
    return len(ids)
