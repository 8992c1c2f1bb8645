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
from core.retention import FINISHED_STATUSES
from models.base import Base, created_at, one_of, updated_at, uuid_pk

# The rows retention may remove (core.retention.FINISHED_STATUSES), as SQL: the partial
# index below and the retention query use this same text, so the planner matches them.
FINISHED = "status IN ({})".format(", ".join(f"'{status.value}'" for status in FINISHED_STATUSES))


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
        # Retention: sends older than NOTIFICATION_RETENTION_DAYS, oldest first.
        Index("ix_notification_sends_created_at", "created_at"),
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
        # Deleting a summary row sets its held rows' batched_into_id to NULL: without this,
        # each deleted row would cost a scan of the whole table. Only held rows carry one.
        Index(
            "ix_notification_queue_batched_into",
            "batched_into_id",
            postgresql_where=text("batched_into_id IS NOT NULL"),
        ),
        # Retention: finished rows oldest first. Rows enter it once, when they are settled
        # (not on insert or claim, when they are pending or processing).
        Index(
            "ix_notification_queue_finished_created",
            "created_at",
            postgresql_where=text(FINISHED),
        ),
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
        # Expo receipts are checked for tickets that are sent and not yet confirmed, oldest
        # first, a page after another: (created_at, id) is the page's key.
        Index(
            "ix_notification_deliveries_expo_awaiting_receipt",
            "created_at",
            "id",
            postgresql_where=text("provider = 'expo' AND status = 'sent'"),
        ),
        # A receipt is recorded by its ticket id (the provider message id), while it waits.
        Index(
            "ix_notification_deliveries_expo_ticket",
            "provider_message_id",
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


# --- retention (jobs.maintenance.apply_retention) ----------------------------------------

EXPIRE_UNCLAIMED = text(
    """
    UPDATE notification_queue SET status = 'expired', reason = 'expired', updated_at = :now
    WHERE id = ANY(ARRAY(
        SELECT id FROM notification_queue
        WHERE status IN ('pending', 'scheduled') AND expires_at <= :now
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ))
    """
)
DELETE_FINISHED = text(
    f"""
    WITH batch AS (
        SELECT id FROM notification_queue
        WHERE {FINISHED} AND created_at < :cutoff
        ORDER BY created_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ), deliveries AS (
        DELETE FROM notification_deliveries
        WHERE notification_id = ANY(ARRAY(SELECT id FROM batch))
        RETURNING 1
    ), notifications AS (
        DELETE FROM notification_queue WHERE id = ANY(ARRAY(SELECT id FROM batch))
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM notifications), (SELECT count(*) FROM deliveries)
    """
)


def expire_unclaimed(session: Session, now: datetime, limit: int) -> int:
    """Up to `limit` waiting rows whose expires_at has passed become expired: the ones no
    delivery job will claim again (scheduled far ahead, stuck pending). The claim expires
    the ones it meets the same way (models.outbox.expire_overdue). Returns how many."""
    return int(session.execute(EXPIRE_UNCLAIMED, {"now": now, "limit": limit}).rowcount or 0)


def delete_finished_before(session: Session, cutoff: datetime, limit: int) -> tuple[int, int]:
    """Delete up to `limit` finished notifications created before `cutoff`, oldest first,
    with their deliveries, in one statement; rows another transaction holds are left for
    the next batch. Returns (notifications, deliveries) deleted."""
    notifications, deliveries = session.execute(
        DELETE_FINISHED, {"cutoff": cutoff, "limit": limit}
    ).one()
    return int(notifications), int(deliveries)
