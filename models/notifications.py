"""The notification outbox and its per-device delivery attempts.

Every notification is a row here before it is a job; jobs carry only ids.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, SmallInteger, String, Text, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.catalog import DeliveryStatus, NotificationStatus, NotificationType, Priority, Provider
from models.base import Base, created_at, one_of, updated_at, uuid_pk


class Notification(Base):
    __tablename__ = "notification_queue"
    __table_args__ = (
        one_of("priority", Priority),
        one_of("status", NotificationStatus),
        one_of("notification_type", NotificationType),
        Index("ix_notification_queue_user_id", "user_id"),
        Index("ix_notification_queue_notification_type", "notification_type"),
        Index("ix_notification_queue_status", "status"),
        Index("ix_notification_queue_scheduled_for", "scheduled_for"),
        Index("ix_notification_queue_priority", "priority"),
        # The outbox sweep: what is due and not yet done, most urgent first.
        Index(
            "ix_notification_queue_due",
            "scheduled_for",
            postgresql_where=text("status IN ('pending', 'scheduled', 'processing')"),
        ),
        Index(
            "uq_notification_queue_user_idempotency",
            "user_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index("ix_notification_queue_batch_key", "batch_key", "created_at"),
        Index("ix_notification_queue_user_created", "user_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    notification_type: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'"))
    priority: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(
        String(16), default=NotificationStatus.PENDING, server_default=NotificationStatus.PENDING
    )
    scheduled_for: Mapped[datetime] = mapped_column(server_default=text("now()"))
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    batch_key: Mapped[str | None] = mapped_column(String(200))
    batched_into_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("notification_queue.id", ondelete="SET NULL")
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    send_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    lease_expires_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class NotificationDelivery(Base):
    """One provider attempt for one notification on one device."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        one_of("provider", Provider),
        one_of("status", DeliveryStatus),
        Index("ix_notification_deliveries_notification_id", "notification_id"),
        Index("ix_notification_deliveries_token_id", "token_id"),
        # Expo receipts are checked for tickets that are sent and not yet confirmed.
        Index(
            "ix_notification_deliveries_unconfirmed_expo",
            "created_at",
            postgresql_where=text("provider = 'expo' AND status = 'sent'"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    notification_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notification_queue.id", ondelete="CASCADE")
    )
    token_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("push_tokens.id", ondelete="SET NULL")
    )
    provider: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    error_reason: Mapped[str | None] = mapped_column(String(200))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
