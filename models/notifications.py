"""The notification outbox and its per-device delivery attempts.

Every notification is a row here before it is a job; jobs carry only ids.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, SmallInteger, String, Text, select, text, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.catalog import DeliveryStatus, NotificationStatus, NotificationType, Priority, Provider
from models.base import Base, created_at, one_of, updated_at, uuid_pk


class NotificationSend(Base):
    """One accepted send request: what was asked, by whom, and the answer it got, so that
    the same idempotency key returns the first answer and creates nothing."""

    __tablename__ = "notification_sends"
    __table_args__ = (
        Index(
            "uq_notification_sends_requester_key",
            "requested_by",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    requested_by: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    # The normalized request, so that an all-users fan-out job can build the rows later.
    request: Mapped[dict[str, Any]] = mapped_column(JSONB)
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    fanned_out_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()


class Notification(Base):
    __tablename__ = "notification_queue"
    __table_args__ = (
        one_of("priority", Priority),
        one_of("status", NotificationStatus),
        one_of("notification_type", NotificationType),
        # Every status change rewrites a row into each index, three times per notification
        # (insert, claim, settle); so no single-column index on status, priority or type
        # (a handful of values each), only what a query reads:
        # The outbox sweep: what is due and not yet done, most urgent first.
        Index(
            "ix_notification_queue_due",
            "scheduled_for",
            postgresql_where=text("status IN ('pending', 'scheduled', 'processing')"),
        ),
        # The sweep taking back rows whose worker died: only rows in flight are indexed.
        Index(
            "ix_notification_queue_lease",
            "lease_expires_at",
            postgresql_where=text("status = 'processing'"),
        ),
        # Finding a batch's summary row; only rows that were ever held carry a key.
        Index(
            "ix_notification_queue_batch_key",
            "batch_key",
            "created_at",
            postgresql_where=text("batch_key IS NOT NULL"),
        ),
        # One notification per user per send, so that a fan-out job can safely run twice.
        Index(
            "uq_notification_queue_send_user",
            "send_id",
            "user_id",
            unique=True,
            postgresql_where=text("send_id IS NOT NULL"),
        ),
        # A user's inbox, newest first (and any lookup by user).
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
    send_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("notification_sends.id", ondelete="SET NULL")
    )
    # Only these platforms' devices (NULL: all of them).
    platforms: Mapped[list[str] | None] = mapped_column(ARRAY(String(16)))
    # When a job for this row was last put on a queue; the sweep re-enqueues stale ones.
    enqueued_at: Mapped[datetime | None]
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


def deliveries_of(session: Session, notification_id: uuid.UUID) -> list[NotificationDelivery]:
    return list(
        session.scalars(
            select(NotificationDelivery)
            .where(NotificationDelivery.notification_id == notification_id)
            .order_by(NotificationDelivery.created_at, NotificationDelivery.id)
        )
    )


def inbox_page(
    session: Session, user_id: str, limit: int, before: tuple[datetime, uuid.UUID] | None
) -> list[Notification]:
    """A user's notifications, newest first, after the keyset cursor `before`; merged
    (batched) and cancelled rows are not shown."""
    query = (
        select(Notification)
        .where(
            Notification.user_id == user_id,
            Notification.status.not_in([NotificationStatus.BATCHED, NotificationStatus.CANCELLED]),
        )
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(tuple_(Notification.created_at, Notification.id) < tuple_(*before))
    return list(session.scalars(query))
