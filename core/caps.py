"""Frequency caps: at most N pushes a user's local day and M per type per hour.

Pure: which counters a push counts against and when each resets, and what happens when
a cap is reached. The counting itself is an atomic Redis script (stores/caps.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from core.catalog import TYPE_DEFAULTS, CapPolicy, NotificationType, Priority

FREQUENCY_CAP = "frequency_cap"


@dataclass(frozen=True)
class CapWindows:
    day_key: str  # the user's local date
    day_resets_at: datetime  # the user's next local midnight, in UTC
    hour_key: str
    hour_resets_at: datetime


class OverCap(StrEnum):
    DEFER = "defer"
    SUPPRESS = "suppress"


def cap_windows(now: datetime, timezone: str) -> CapWindows:
    local = now.astimezone(ZoneInfo(timezone))
    next_midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time())
    day_resets_at = next_midnight.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)
    hour_start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return CapWindows(
        day_key=local.date().isoformat(),
        day_resets_at=day_resets_at,
        hour_key=hour_start.strftime("%Y%m%d%H"),
        hour_resets_at=hour_start + timedelta(hours=1),
    )


def over_cap(priority: Priority) -> OverCap:
    """High and normal wait for the cap to free; low is not worth a later push."""
    return OverCap.SUPPRESS if priority is Priority.LOW else OverCap.DEFER


def counts_against_caps(notification_type: NotificationType, priority: Priority) -> bool:
    """Critical bypasses the caps and does not use them up; so does a type whose catalogue
    policy is uncapped (messages and matches: the product's core, merged by batching)."""
    return (
        priority is not Priority.CRITICAL
        and TYPE_DEFAULTS[notification_type].caps is CapPolicy.CAPPED
    )
