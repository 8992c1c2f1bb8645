"""Real-time events to broadcast over Socket.IO, stored before they are sent."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.catalog import RealtimeEventType
from models.base import Base, created_at, one_of, uuid_pk


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
