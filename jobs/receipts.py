"""Expo receipts: about 15 minutes after Expo accepted a push (a ticket), ask what became
of it; record delivered or failed, drop dead tokens, and send again later what Expo could
not pass on (timed by the one retry policy).

A run pages through every ticket of the last 24 hours still waiting for its receipt, oldest
first, 1,000 ids a request (Expo's limit), one request after another, until none is left or
its time budget is spent; the next run (every minute) starts again from the oldest. Tickets
whose receipt is not ready stay "sent" and are asked again; those that got one leave the
scan. Idempotent: a receipt changes only a ticket still "sent"."""

from __future__ import annotations

import logging
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from core.catalog import DeliveryStatus, Provider
from core.retry import RetryPolicy, retry_policy
from models.db import db
from models.receipts import (
    PendingTicket,
    Receipt,
    record_receipts,
    reschedule_sent,
    tickets_awaiting_receipt,
)
from models.tokens import deactivate_token
from providers import Outcome, ReceiptResult
from runtime import current_runtime

log = logging.getLogger(__name__)

# Expo's limit of ids per getReceipts request: a page is one request.
RECEIPT_CHUNK = 1_000
# Expo keeps receipts for about a day; after that there is nothing left to ask.
RECEIPTS_KEPT = timedelta(hours=24)
# A run stops starting new pages after this long: below the schedule's minute, so that runs
# rarely overlap (an overlap is harmless, only wasted requests).
TIME_BUDGET_SECONDS = 45.0
RECEIPT_STATUS = {
    Outcome.SENT: DeliveryStatus.DELIVERED,
    Outcome.TRANSIENT: DeliveryStatus.RETRYING,
}


def check_expo_receipts(time_budget_seconds: float = TIME_BUDGET_SECONDS) -> dict[str, int]:
    """Check the receipts of Expo tickets older than EXPO_RECEIPT_DELAY_SECONDS and younger
    than a day, oldest first, a page of 1,000 at a time, for at most `time_budget_seconds`
    (a run always checks at least one page)."""
    runtime = current_runtime()
    checker = runtime.providers[Provider.EXPO]
    policy = retry_policy(runtime.settings.delivery)
    started = time.monotonic()
    now = datetime.now(UTC)
    ready_before = now - timedelta(seconds=runtime.settings.providers.expo_receipt_delay_seconds)
    sent_after = now - RECEIPTS_KEPT
    counts = {"checked": 0, "delivered": 0, "failed": 0, "retrying": 0}
    after: tuple[datetime, uuid.UUID] | None = None
    pages = 0
    out_of_time = False
    while True:
        with db.session_scope() as session:
            page = tickets_awaiting_receipt(
                session, ready_before, sent_after, RECEIPT_CHUNK, after=after
            )
        if not page:
            break
        pages += 1
        after = page[-1].key
        tickets = {ticket.ticket_id: ticket for ticket in page}
        receipts = checker.check_receipts(list(tickets))  # type: ignore[attr-defined]
        _record(receipts, tickets, policy, counts)
        if len(page) < RECEIPT_CHUNK:
            break
        if time.monotonic() - started >= time_budget_seconds:
            out_of_time = True  # the rest waits for the next run
            break
    if pages:
        log.info(
            "event=expo_receipts_checked pages=%d out_of_time=%s %s",
            pages,
            out_of_time,
            " ".join(f"{k}={v}" for k, v in counts.items()),
        )
    return counts


def _record(
    receipts: dict[str, ReceiptResult],
    tickets: dict[str, PendingTicket],
    policy: RetryPolicy,
    counts: dict[str, int],
) -> None:
    """One transaction per page: the receipts in one statement, then the rare follow-ups
    (a notification to send again, a dead token)."""
    now = datetime.now(UTC)
    rows = []
    for ticket_id, receipt in receipts.items():
        status = RECEIPT_STATUS.get(receipt.outcome, DeliveryStatus.FAILED)
        counts["checked"] += 1
        counts[status.value] += 1
        error = receipt.error if status is not DeliveryStatus.DELIVERED else None
        rows.append(Receipt(ticket_id, status, error))
    with db.session_scope() as session:
        record_receipts(session, rows, now)
        for row in rows:
            ticket = tickets[row.ticket_id]
            if row.status is DeliveryStatus.RETRYING:
                # Expo took it but could not pass it on (e.g. MessageRateExceeded).
                at = policy.next_attempt_at(ticket.attempts, now, random.random())
                if at is not None:
                    reschedule_sent(session, ticket.notification_id, at, now)
            outcome = receipts[row.ticket_id].outcome
            if outcome is Outcome.TOKEN_INVALID and ticket.token_id is not None:
                deactivate_token(session, ticket.token_id, f"expo:{row.error}", now)
