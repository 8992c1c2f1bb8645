"""The per-connection event rate limit of the gateway: a token bucket as a pure function.

No clock and no storage here: the caller keeps the bucket and passes `now`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bucket:
    tokens: float
    updated: float


def full_bucket(burst: int, now: float) -> Bucket:
    return Bucket(float(burst), now)


def take(bucket: Bucket, now: float, rate_per_second: int, burst: int) -> tuple[bool, Bucket]:
    """Spend one token if there is one; tokens refill at `rate_per_second` up to `burst`."""
    refilled = min(float(burst), bucket.tokens + max(0.0, now - bucket.updated) * rate_per_second)
    if refilled >= 1.0:
        return True, Bucket(refilled - 1.0, now)
    return False, Bucket(refilled, now)


def retry_after_ms(bucket: Bucket, rate_per_second: int) -> int:
    """How long until the next token, in milliseconds (rounded up)."""
    missing = max(0.0, 1.0 - bucket.tokens)
    return int(missing * 1000 / rate_per_second) + 1
