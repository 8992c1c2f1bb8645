"""Expo receipts in the database: the tickets still waiting for one, and what a receipt
changes (the delivery's status; for a "try again later", the notification rescheduled).
Writes run in the caller's unit of work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.catalog import DeliveryStatus, NotificationStatus, Provider
from models.notifications import Notification, NotificationDelivery


@dataclass(frozen=True)
class PendingTicket:
    ticket_id: str
    token_id: uuid.UUID | None
    notification_id: uuid.UUID
    attempts: int


def tickets_awaiting_receipt(
    session: Session, sent_before: datetime, sent_after: datetime, limit: int
) -> list[PendingTicket]:
    """Expo tickets sent in (sent_after, sent_before) whose delivery is still only "sent"."""
    rows = session.execute(
        select(
            NotificationDelivery.provider_message_id,
            NotificationDelivery.token_id,
            NotificationDelivery.notification_id,
            Notification.attempts,
        )
        .join(Notification, Notification.id == NotificationDelivery.notification_id)
        .where(
            NotificationDelivery.provider == Provider.EXPO,
            NotificationDelivery.status == DeliveryStatus.SENT,
            NotificationDelivery.provider_message_id.is_not(None),
            NotificationDelivery.created_at < sent_before,
            NotificationDelivery.created_at > sent_after,
        )
        .limit(limit)
    ).all()
    return [PendingTicket(*row) for row in rows]


def record_receipt(
    session: Session, ticket_id: str, status: DeliveryStatus, error: str | None, now: datetime
) -> None:
    session.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.provider_message_id == ticket_id)
        .values(status=status, error_reason=error, updated_at=now)
    )


def reschedule_sent(
    session: Session, notification_id: uuid.UUID, at: datetime, now: datetime
) -> None:
    """A notification the provider took but could not pass on goes out again at `at`; the
    retry skips the devices that did get it."""
    session.execute(
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.status.in_([NotificationStatus.SENT, NotificationStatus.PARTIALLY_SENT]),
        )
        .values(
            status=NotificationStatus.SCHEDULED,
            scheduled_for=at,
            enqueued_at=None,
            reason="retrying",
            updated_at=now,
        )
    )
