"""What becomes of a notification after one delivery attempt to its user's devices.

Pure: counts of what each device answered, the attempt number and the retry policy in;
the notification's next status out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.catalog import NotificationStatus
from core.retry import RetryPolicy

NO_ACTIVE_TOKEN = "no_active_token"


@dataclass(frozen=True)
class AttemptCounts:
    already_sent: int  # devices that accepted it in an earlier attempt
    sent: int  # devices that accepted it now
    retryable: int  # transient errors (and our credentials errors, once fixed)
    failed: int  # permanent: token gone, payload refused


@dataclass(frozen=True)
class Decision:
    status: NotificationStatus
    retry_at: datetime | None = None
    reason: str | None = None


def decide(
    counts: AttemptCounts,
    attempts: int,
    policy: RetryPolicy,
    now: datetime,
    jitter: float,
    retry_after: float | None = None,
) -> Decision:
    total = counts.already_sent + counts.sent + counts.retryable + counts.failed
    if total == 0:
        return Decision(NotificationStatus.SUPPRESSED, reason=NO_ACTIVE_TOKEN)
    if counts.retryable:
        retry_at = policy.next_attempt_at(attempts, now, jitter, retry_after)
        if retry_at is not None:
            return Decision(NotificationStatus.SCHEDULED, retry_at=retry_at, reason="retrying")
    delivered = counts.already_sent + counts.sent
    if delivered == total:
        return Decision(NotificationStatus.SENT)
    if delivered:
        return Decision(NotificationStatus.PARTIALLY_SENT)
    return Decision(NotificationStatus.FAILED)
