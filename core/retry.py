"""When to try a failed delivery again: exponential backoff with full jitter, honouring
the provider's Retry-After, bounded in attempts. Pure: the caller passes the randomness."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.config import DeliverySettings


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 2.0
    cap_seconds: float = 600.0

    def next_attempt_at(
        self, attempts: int, now: datetime, jitter: float, retry_after: float | None = None
    ) -> datetime | None:
        """When attempt `attempts + 1` may run, or None when `attempts` used up the budget.

        `jitter` is a number in [0, 1); the delay is a random point in the exponential
        window (AWS's "full jitter"), never shorter than Retry-After.
        """
        if attempts >= self.max_attempts:
            return None
        window = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        delay = max(window * jitter, retry_after or 0.0, 1.0)
        return now + timedelta(seconds=min(delay, max(self.cap_seconds, retry_after or 0.0)))


def retry_policy(delivery: DeliverySettings) -> RetryPolicy:
    """The deployment's policy (DELIVERY_MAX_ATTEMPTS, RETRY_BASE_SECONDS): every retry,
    a provider's transient error or an Expo receipt's, is timed by it."""
    return RetryPolicy(max_attempts=delivery.max_attempts, base_seconds=delivery.retry_base_seconds)
