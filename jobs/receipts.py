"""Expo receipts: about 15 minutes after Expo accepted a push (a ticket), ask what became
of it, in chunks of at most 1,000 ids; record delivered or failed, drop dead tokens, and
send again later what Expo could not pass on (timed by the one retry policy)."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta

from core.catalog import DeliveryStatus, Provider
from core.retry import retry_policy
from models.db import db
from models.receipts import record_receipt, reschedule_sent, tickets_awaiting_receipt
from models.sends import chunks
from models.tokens import deactivate_token
from providers import Outcome
from runtime import current_runtime

log = logging.getLogger(__name__)

RECEIPT_CHUNK = 1_000
# Expo keeps receipts for about a day; after that there is nothing left to ask.
RECEIPTS_KEPT = timedelta(hours=24)
BATCH = 10_000
RECEIPT_STATUS = {
    Outcome.SENT: DeliveryStatus.DELIVERED,
    Outcome.TRANSIENT: DeliveryStatus.RETRYING,
}


def check_expo_receipts() -> dict[str, int]:
    """Check receipts of Expo tickets older than EXPO_RECEIPT_DELAY_SECONDS; idempotent."""
    runtime = current_runtime()
    checker = runtime.providers[Provider.EXPO]
    policy = retry_policy(runtime.settings.delivery)
    now = datetime.now(UTC)
    ready_before = now - timedelta(seconds=runtime.settings.providers.expo_receipt_delay_seconds)
    with db.session_scope() as session:
        pending = tickets_awaiting_receipt(session, ready_before, now - RECEIPTS_KEPT, BATCH)
    tickets = {ticket.ticket_id: ticket for ticket in pending}
    counts = {"checked": 0, "delivered": 0, "failed": 0, "retrying": 0}
    for chunk in chunks(list(tickets), RECEIPT_CHUNK):
        receipts = checker.check_receipts(chunk)  # type: ignore[attr-defined]
        with db.session_scope() as session:
            for ticket_id, receipt in receipts.items():
                ticket = tickets[ticket_id]
                status = RECEIPT_STATUS.get(receipt.outcome, DeliveryStatus.FAILED)
                counts["checked"] += 1
                counts[status.value] += 1
                error = receipt.error if status is not DeliveryStatus.DELIVERED else None
                record_receipt(session, ticket_id, status, error, now)
                if status is DeliveryStatus.RETRYING:
                    # Expo took it but could not pass it on (e.g. MessageRateExceeded).
                    at = policy.next_attempt_at(ticket.attempts, now, random.random())
                    if at is not None:
                        reschedule_sent(session, ticket.notification_id, at, now)
                if receipt.outcome is Outcome.TOKEN_INVALID and ticket.token_id is not None:
                    deactivate_token(session, ticket.token_id, f"expo:{receipt.error}", now)
    if counts["checked"]:
        log.info("event=expo_receipts_checked %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts
