"""The one interface every push provider implements, and the shapes it speaks in.

Providers turn messages into results and never raise for a per-message error; nothing
here may log a device token or a message body (use `token_fingerprint`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Protocol

from core.catalog import Priority, Provider
from core.device_tokens import TokenCipher


@dataclass(frozen=True)
class PushMessage:
    ref: str  # opaque id (the delivery row id) that ties a result to its message
    token: str  # the device token, decrypted: never log it
    title: str
    body: str  # never log it
    data: Mapping[str, Any]
    priority: Priority
    collapse_key: str | None = None  # APNs apns-collapse-id, FCM collapse_key; Expo has none
    thread_id: str | None = None  # APNs thread-id, Android notification tag
    expires_at: datetime | None = None  # aware; APNs apns-expiration, FCM ttl, Expo expiration
    badge: int | None = None
    sound: str | None = "default"  # None: silent
    channel: str | None = None  # Android notification channel (FCM channel_id, Expo channelId)
    interruption_level: str | None = None  # APNs aps.interruption-level
    quiet: bool = False  # quiet hours: no sound or vibration, does not light the screen

    @property
    def is_urgent(self) -> bool:
        """Critical and high wake the device now; normal and low may be delayed to save power,
        and so may a push delivered quietly (it must not light the screen)."""
        return not self.quiet and self.priority in (Priority.CRITICAL, Priority.HIGH)


class Outcome(StrEnum):
    SENT = "sent"  # accepted by the provider
    TOKEN_INVALID = "token_invalid"  # permanent: deactivate the token, never retry
    TRANSIENT = "transient"  # retry later with backoff, honouring retry_after
    PAYLOAD_ERROR = "payload_error"  # this notification can never be sent as is; keep the token
    CREDENTIALS_ERROR = "credentials_error"  # our configuration is wrong: alarm, keep the token


@dataclass(frozen=True)
class PushResult:
    ref: str
    outcome: Outcome
    provider_message_id: str | None = None  # apns-id / FCM message name / Expo ticket id
    error: str | None = None  # the provider's reason code only, never its free text
    retry_after: float | None = None  # seconds, from Retry-After
    token_invalid_since: datetime | None = None  # APNs 410 "timestamp", aware UTC
    environment_mismatch: bool = False  # APNs BadDeviceToken: maybe a sandbox/production mix-up
    latency_ms: float | None = None


@dataclass(frozen=True)
class ReceiptResult:
    """What a provider finally did with an accepted message (Expo receipts).

    outcome SENT means delivered to Apple or Google; the other outcomes mean what they
    mean for a PushResult.
    """

    ticket_id: str
    outcome: Outcome
    error: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


class PushProvider(Protocol):
    name: Provider

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        """One result per message, in the same order; per-message failures are results."""
        ...

    def close(self) -> None: ...


class ReceiptChecker(Protocol):
    def check_receipts(self, ticket_ids: Sequence[str]) -> dict[str, ReceiptResult]:
        """Receipts that are ready, by ticket id; an id missing from the answer is not ready."""
        ...


def token_fingerprint(token: str) -> str:
    """The same short non-reversible id the rest of Pulse logs instead of a token."""
    return TokenCipher.fingerprint(token)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def seconds_until(expires_at: datetime, now: datetime | None = None) -> int:
    """Whole seconds left before `expires_at` (never negative); naive datetimes are UTC."""
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    return max(0, int((expires_at - (now or datetime.now(UTC))).total_seconds()))


def kv(**fields: Any) -> str:
    """key=value pairs for one structured log line; values with spaces are quoted."""
    parts = []
    for key, value in fields.items():
        text = "-" if value is None else str(value)
        if not text or any(c in text for c in ' "='):
            text = '"' + text.replace('"', "'") + '"'
        parts.append(f"{key}={text}")
    return " ".join(parts)


def log_batch(
    logger: logging.Logger, provider: Provider, results: Sequence[PushResult], elapsed_ms: float
) -> None:
    """One line per send() call with the count per outcome: never tokens, never bodies."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
    logger.info(
        "event=push_batch %s",
        kv(provider=provider.value, messages=len(results), elapsed_ms=round(elapsed_ms, 1))
        + "".join(f" {outcome}={count}" for outcome, count in sorted(counts.items())),
    )
