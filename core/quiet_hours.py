"""Quiet hours in a user's own time zone: is `now` inside the window, and when does it end.

Pure: the window, the zone and `now` in, an instant out. Windows are wall-clock times in
the user's zone, may cross midnight, and start == end means no quiet hours. Daylight
saving is handled by zoneinfo: an end that falls in a skipped hour ends at the moment
the clocks jump; an end in a repeated hour ends at its first occurrence.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.preferences import QuietHours


def _inside(wall: time, start: time, end: time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= wall < end
    return wall >= start or wall < end  # the window crosses midnight


def _first_instant_at_or_after(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The first real instant on `day` whose local wall time is `wall` or later: `wall`
    itself, its first occurrence when the clocks repeat it, or the moment the clocks jump
    when they skip it."""
    target = datetime.combine(day, wall)
    readings = [target.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
    low, high = min(readings), max(readings)
    if low.astimezone(zone).replace(tzinfo=None) >= target:
        return low
    # Between the two readings lies a skipped stretch of wall time: find the first instant
    # that reads at or after `wall` (the transition itself).
    while high - low > timedelta(microseconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= target:
            high = middle
        else:
            low = middle
    return high


def quiet_hours_end(now: datetime, quiet: QuietHours) -> datetime | None:
    """The UTC instant the user's quiet hours end, if `now` is inside them; else None."""
    zone = ZoneInfo(quiet.timezone)
    local = now.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    if not _inside(wall, quiet.start, quiet.end):
        return None
    end_day = local.date()
    if quiet.start > quiet.end and wall >= quiet.start:
        end_day += timedelta(days=1)
    end = _first_instant_at_or_after(end_day, quiet.end, zone)
    return end if end > now else None


def spread(user_id: str, max_seconds: int) -> timedelta:
    """A stable per-user offset in [0, max_seconds) so that one zone's morning is not one
    spike of pushes."""
    if max_seconds <= 0:
        return timedelta(0)
    digest = hashlib.sha256(user_id.encode()).digest()
    return timedelta(seconds=int.from_bytes(digest[:4], "big") % max_seconds)
