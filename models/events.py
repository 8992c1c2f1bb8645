"""Real-time events to broadcast over Socket.IO, stored before they are sent; accepting one
(its rows, and for a match_update the upserted match) commits here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.catalog import RealtimeEventType
from core.requests import EventRequest
from core.timefmt import iso
from models.base import Base, created_at, one_of, uuid_pk
from models.users import Match, ensure_user, upsert_match


class RealtimeEvent(Base):
    __tablename__ = "realtime_events"
    __table_args__ = (
        one_of("event_type", RealtimeEventType),
        Index("ix_realtime_events_event_type", "event_type"),
        Index("ix_realtime_events_user_id", "user_id"),
        Index("ix_realtime_events_target_user_id", "target_user_id"),
        Index("ix_realtime_events_processed", "processed"),
        Index("ix_realtime_events_created_at", "created_at"),
        Index(
            "ix_realtime_events_unprocessed",
            "created_at",
            postgresql_where=text("NOT processed"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    event_type: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    target_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'")
    )
    processed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    processed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()


def add_events(
    session: Session,
    event_type: str,
    user_id: str | None,
    target_user_ids: Sequence[str | None],
    payload: dict[str, Any],
) -> list[uuid.UUID]:
    """One row per target (users are created if new); the caller commits, then enqueues."""
    for known in {user_id, *target_user_ids} - {None}:
        ensure_user(session, known)  # type: ignore[arg-type]
    rows = [
        RealtimeEvent(
            event_type=event_type, user_id=user_id, target_user_id=target, payload=payload
        )
        for target in target_user_ids
    ]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


def claim_unprocessed(session: Session, ids: Sequence[uuid.UUID]) -> list[RealtimeEvent]:
    """The rows among `ids` not yet broadcast, locked so that a second job skips them."""
    return list(
        session.scalars(
            select(RealtimeEvent)
            .where(RealtimeEvent.id.in_(list(ids)), RealtimeEvent.processed.is_(False))
            .order_by(RealtimeEvent.created_at)
            .with_for_update(skip_locked=True)
        )
    )


def mark_processed(session: Session, rows: Sequence[RealtimeEvent], now: datetime) -> None:
    for row in rows:
        row.processed = True
        row.processed_at = now


def unprocessed_before(session: Session, before: datetime, limit: int) -> list[uuid.UUID]:
    """Rows whose broadcast job was lost (Redis down, a killed worker): for the sweep."""
    return list(
        session.scalars(
            select(RealtimeEvent.id)
            .where(RealtimeEvent.processed.is_(False), RealtimeEvent.created_at < before)
            .order_by(RealtimeEvent.created_at)
            .limit(limit)
        )
    )


PURGE_PROCESSED = text(
    """
    DELETE FROM realtime_events WHERE id = ANY(ARRAY(
        SELECT id FROM realtime_events WHERE created_at < :before AND processed
        ORDER BY created_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ))
    """
)


def purge_processed(session: Session, before: datetime, limit: int) -> int:
    """Retention: delete up to `limit` processed events made before `before`, oldest first
    (ix_realtime_events_created_at); rows another transaction holds wait for the next
    batch. An event never broadcast stays for the sweep. Returns how many."""
    result = session.execute(PURGE_PROCESSED, {"before": before, "limit": limit})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


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
