"""Expo receipts: about 15 minutes after Expo accepted a push (a ticket), ask what became
of it, in chunks of at most 1,000 ids; record delivered or failed and drop dead tokens."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from core.catalog import DeliveryStatus, NotificationStatus, Provider
from models.db import db
from models.notifications import Notification, NotificationDelivery
from models.sends import chunks
from models.tokens import PushToken
from providers import Outcome
from runtime import current_runtime

log = logging.getLogger(__name__)

RECEIPT_CHUNK = 1_000
# Expo keeps receipts for about a day; after that there is nothing left to ask.
RECEIPTS_KEPT = timedelta(hours=24)
BATCH = 10_000
RESEND_AFTER_SECONDS = 60


def check_expo_receipts() -> dict[str, int]:
    """Check receipts of Expo tickets older than EXPO_RECEIPT_DELAY; idempotent."""
    runtime = current_runtime()
    checker = runtime.providers[Provider.EXPO]
    now = datetime.now(UTC)
    ready_before = now - timedelta(seconds=runtime.settings.expo_receipt_delay_seconds)
    with db.session_scope() as session:
        pending = session.execute(
            select(
                NotificationDelivery.provider_message_id,
                NotificationDelivery.token_id,
                NotificationDelivery.notification_id,
            )
            .where(
                NotificationDelivery.provider == Provider.EXPO,
                NotificationDelivery.status == DeliveryStatus.SENT,
                NotificationDelivery.provider_message_id.is_not(None),
                NotificationDelivery.created_at < ready_before,
                NotificationDelivery.created_at > now - RECEIPTS_KEPT,
            )
            .limit(BATCH)
        ).all()
    tickets = {ticket: (token_id, notification_id) for ticket, token_id, notification_id in pending}
    counts = {"checked": 0, "delivered": 0, "failed": 0, "retrying": 0}
    for chunk in chunks(list(tickets), RECEIPT_CHUNK):
        receipts = checker.check_receipts(chunk)  # type: ignore[attr-defined]
        with db.session_scope() as session:
            for ticket_id, receipt in receipts.items():
                token_id, notification_id = tickets[ticket_id]
                status = RECEIPT_STATUS.get(receipt.outcome, DeliveryStatus.FAILED)
                counts["checked"] += 1
                counts[status.value] += 1
                session.execute(
                    update(NotificationDelivery)
                    .where(NotificationDelivery.provider_message_id == ticket_id)
                    .values(
                        status=status,
                        error_reason=receipt.error
                        if status is not DeliveryStatus.DELIVERED
                        else None,
                        updated_at=now,
                    )
                )
                if status is DeliveryStatus.RETRYING:
                    # Expo took it but could not pass it on (e.g. MessageRateExceeded): send
                    # again later; the retry skips the devices that did get it.
                    _send_again_later(session, notification_id, runtime.settings, now)
                if receipt.outcome is Outcome.TOKEN_INVALID and token_id is not None:
                    session.execute(
                        update(PushToken)
                        .where(PushToken.id == token_id, PushToken.is_active)
                        .values(
                            is_active=False,
                            deactivated_at=now,
                            deactivation_reason=f"expo:{receipt.error}",
                            updated_at=now,
                        )
                    )
    if counts["checked"]:
        log.info("event=expo_receipts_checked %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


RECEIPT_STATUS = {
    Outcome.SENT: DeliveryStatus.DELIVERED,
    Outcome.TRANSIENT: DeliveryStatus.RETRYING,
}


def _send_again_later(session, notification_id, settings, now: datetime) -> None:
    session.execute(
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.status.in_([NotificationStatus.SENT, NotificationStatus.PARTIALLY_SENT]),
            Notification.attempts < settings.delivery_max_attempts,
        )
        .values(
            status=NotificationStatus.SCHEDULED,
            scheduled_for=now + timedelta(seconds=RESEND_AFTER_SECONDS),
            enqueued_at=None,
            reason="retrying",
            updated_at=now,
        )
    )
