"""Backend real-time events: accepting one (rows, and for match_update the matches table),
and the broadcast job that sends it to its receivers' rooms, or, for a receiver with no
live connection, hands its push counterpart to the pipeline.

A job takes ids, locks the unprocessed rows, and is safe to run twice (a push fallback has
an idempotency key). Payloads are never logged.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import redis
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.catalog import RealtimeEventType, user_room
from core.realtime_events import push_counterpart, push_data, recipients
from models.db import db
from models.events import (
    RealtimeEvent,
    add_events,
    claim_unprocessed,
    mark_processed,
    purge_processed,
    unprocessed_before,
)
from models.users import Match, upsert_match
from realtime.presence import iso, publish_presence
from runtime import Runtime, current_runtime
from stores.presence import PresenceStore
from stores.typing import TypingStore

if TYPE_CHECKING:
    from api.realtime.schemas import EventRequest

log = logging.getLogger(__name__)

REENQUEUE_AFTER = timedelta(seconds=30)
KEEP_PROCESSED = timedelta(days=7)


@dataclass(frozen=True)
class AcceptedEvents:
    event_ids: list[uuid.UUID]
    match_id: uuid.UUID | None
    conversations_changed: tuple[str, ...]
    match_people: tuple[str, ...] = ()

    @property
    def response(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "event_ids": [str(i) for i in self.event_ids],
            "count": len(self.event_ids),
            "status": "accepted",
        }
        if self.match_id is not None:
            answer["match_id"] = str(self.match_id)
        return answer


def accept_event(session: Session, request: EventRequest) -> AcceptedEvents:
    """Store the event's rows (and upsert the match of a match_update), and commit."""
    payload = dict(request.payload)
    match_id = None
    conversations: tuple[str, ...] = ()
    if request.match is not None:
        before = session.scalar(
            select(Match.conversation_id).where(
                Match.user_a_id == request.match.user_a_id,
                Match.user_b_id == request.match.user_b_id,
            )
        )
        match = upsert_match(
            session, request.match.user_a_id, request.match.user_b_id, request.match.changes
        )
        match_id = match.id
        conversations = tuple(c for c in {before, match.conversation_id} if c)
        payload.update(
            {
                "match_id": str(match.id),
                "user_ids": [match.user_a_id, match.user_b_id],
                "status": match.status,
                "conversation_id": match.conversation_id,
                "expires_at": iso(match.expires_at),
            }
        )
    ids = add_events(
        session, request.event_type.value, request.user_id, request.target_user_ids, payload
    )
    session.commit()
    people = (request.match.user_a_id, request.match.user_b_id) if request.match else ()
    return AcceptedEvents(ids, match_id, conversations, people)


def after_accept(connection: redis.Redis, prefix: str, accepted: AcceptedEvents) -> None:
    """After the commit: forget cached conversations a match change touched, enqueue the
    broadcast (a lost enqueue is found by the sweep)."""
    from intake.dispatch import enqueue_broadcast

    if accepted.conversations_changed:
        store = TypingStore(connection, prefix)
        for conversation_id in accepted.conversations_changed:
            store.forget_conversation(conversation_id)
    if accepted.match_people:
        PresenceStore(connection, prefix).forget_partners(accepted.match_people)
    enqueue_broadcast(connection, accepted.event_ids)


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
    from intake.dispatch import notify

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
            body["emitted_at"] = iso(datetime.fromtimestamp(time.time(), UTC))
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


def sweep_realtime_events(limit: int = 500) -> int:
    """Periodic: re-enqueue events whose broadcast job was lost; purge old processed ones."""
    from intake.dispatch import enqueue_broadcast

    ctx = current_runtime()
    now = datetime.now(UTC)
    with db.session_scope() as session:
        ids = unprocessed_before(session, now - REENQUEUE_AFTER, limit)
        purged = purge_processed(session, now - KEEP_PROCESSED)
    if ids:
        enqueue_broadcast(ctx.redis, ids)
        log.info("event=realtime_events_reenqueued count=%d", len(ids))
    if purged:
        log.info("event=realtime_events_purged count=%d", purged)
    return len(ids)
