"""Expo receipts in the database: the tickets still waiting for one, and what a receipt
changes (the delivery's status; for a "try again later", the notification rescheduled).
Writes run in the caller's unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text, tuple_, update
from sqlalchemy.orm import Session

from core.catalog import DeliveryStatus, NotificationStatus, Provider
from models.notifications import Notification, NotificationDelivery


@dataclass(frozen=True)
class PendingTicket:
    ticket_id: str
    token_id: uuid.UUID | None
    notification_id: uuid.UUID
    attempts: int
    # The page key: where the next page starts.
    created_at: datetime
    delivery_id: uuid.UUID

    @property
    def key(self) -> tuple[datetime, uuid.UUID]:
        return self.created_at, self.delivery_id


def tickets_awaiting_receipt(
    session: Session,
    sent_before: datetime,
    sent_after: datetime,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[PendingTicket]:
    """A page of Expo tickets sent in (sent_after, sent_before) whose delivery is still only
    "sent", oldest first, after the page key `after` (the last ticket of the page before).

    The partial index ix_notification_deliveries_unconfirmed_expo (created_at, id) holds
    only these tickets, in this order: a page is one index range scan."""
    query = (
        select(
            NotificationDelivery.provider_message_id,
            NotificationDelivery.token_id,
            NotificationDelivery.notification_id,
            Notification.attempts,
            NotificationDelivery.created_at,
            NotificationDelivery.id,
        )
        .join(Notification, Notification.id == NotificationDelivery.notification_id)
        .where(
            NotificationDelivery.provider == Provider.EXPO,
            NotificationDelivery.status == DeliveryStatus.SENT,
            NotificationDelivery.provider_message_id.is_not(None),
            NotificationDelivery.created_at < sent_before,
            NotificationDelivery.created_at > sent_after,
        )
        .order_by(NotificationDelivery.created_at, NotificationDelivery.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(
            tuple_(NotificationDelivery.created_at, NotificationDelivery.id) > tuple_(*after)
        )
    return [PendingTicket(*row) for row in session.execute(query).all()]


@dataclass(frozen=True)
class Receipt:
    ticket_id: str
    status: DeliveryStatus
    error: str | None


RECORD_RECEIPTS = text(
    """
    UPDATE notification_deliveries AS d SET
        status = r.status, error_reason = r.error, updated_at = :now
    FROM unnest(
        CAST(:ticket_ids AS text[]), CAST(:statuses AS text[]), CAST(:errors AS text[])
    ) AS r(ticket_id, status, error)
    WHERE d.provider_message_id = r.ticket_id AND d.provider = 'expo' AND d.status = 'sent'
    """
)


def record_receipts(session: Session, receipts: Sequence[Receipt], now: datetime) -> int:
    """Write a page of receipts in one statement, each found by its ticket id through
    ix_notification_deliveries_expo_ticket. Only tickets still "sent" change, so a receipt
    recorded twice (two runs at once) changes nothing the second time. Returns how many."""
    if not receipts:
        return 0
    result = session.execute(
        RECORD_RECEIPTS,
        {
            "ticket_ids": [r.ticket_id for r in receipts],
            "statuses": [r.status.value for r in receipts],
            "errors": [r.error for r in receipts],
            "now": now,
        },
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


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
