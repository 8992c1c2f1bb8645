"""Quiet hours in the user's own zone, across midnight and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from core.preferences import QuietHours
from core.quiet_hours import quiet_hours_end, spread


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "start", "end", "now", "expected"),
    [
        # New York, winter (UTC-5): 22:00-08:00 local is 03:00-13:00 UTC
        ("America/New_York", time(22), time(8), utc(2026, 1, 15, 4, 0), utc(2026, 1, 15, 13, 0)),
        ("America/New_York", time(22), time(8), utc(2026, 1, 15, 2, 59), None),
        ("America/New_York", time(22), time(8), utc(2026, 1, 15, 13, 0), None),  # end is exclusive
        ("America/New_York", time(22), time(8), utc(2026, 1, 15, 3, 0), utc(2026, 1, 15, 13, 0)),
        # a window that does not cross midnight
        ("Europe/London", time(13), time(14), utc(2026, 1, 15, 13, 30), utc(2026, 1, 15, 14, 0)),
        ("Europe/London", time(13), time(14), utc(2026, 1, 15, 14, 30), None),
        # start == end: no quiet hours at all
        ("UTC", time(0), time(0), utc(2026, 1, 15, 3, 0), None),
        # odd offsets: Kathmandu +05:45, Chatham +13:45 in (southern) summer
        ("Asia/Kathmandu", time(22), time(8), utc(2026, 1, 15, 17, 0), utc(2026, 1, 16, 2, 15)),
        ("Pacific/Chatham", time(22), time(8), utc(2026, 1, 15, 9, 0), utc(2026, 1, 15, 18, 15)),
        ("Pacific/Chatham", time(22), time(8), utc(2026, 1, 15, 7, 0), None),
        # New York spring forward, 2026-03-08 02:00 EST -> 03:00 EDT
        ("America/New_York", time(22), time(8), utc(2026, 3, 8, 6, 0), utc(2026, 3, 8, 12, 0)),
        # ... a window ending inside the skipped hour ends when the clocks jump
        ("America/New_York", time(23), time(2, 30), utc(2026, 3, 8, 5, 0), utc(2026, 3, 8, 7, 0)),
        # ... a window starting inside the skipped hour has begun once the clocks jump
        ("America/New_York", time(2, 30), time(6), utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 10, 0)),
        ("America/New_York", time(2, 30), time(6), utc(2026, 3, 8, 6, 59), None),
        # New York fall back, 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice
        (
            "America/New_York",
            time(23),
            time(1, 30),
            utc(2026, 11, 1, 4, 0),
            utc(2026, 11, 1, 5, 30),
        ),
        (
            "America/New_York",
            time(1, 30),
            time(6),
            utc(2026, 11, 1, 6, 45),
            utc(2026, 11, 1, 11, 0),
        ),
        ("America/New_York", time(22), time(8), utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 13, 0)),
        # London spring forward, 2026-03-29 01:00 GMT -> 02:00 BST
        (
            "Europe/London",
            time(0, 30),
            time(1, 30),
            utc(2026, 3, 29, 0, 45),
            utc(2026, 3, 29, 1, 0),
        ),
        ("Europe/London", time(22), time(8), utc(2026, 3, 29, 3, 0), utc(2026, 3, 29, 7, 0)),
        # London fall back, 2026-10-25 02:00 BST -> 01:00 GMT: 01:15 happens twice
        (
            "Europe/London",
            time(23),
            time(1, 15),
            utc(2026, 10, 24, 23, 30),
            utc(2026, 10, 25, 0, 15),
        ),
        ("Europe/London", time(22), time(8), utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 8, 0)),
    ],
)
def test_the_window_and_its_end(zone, start, end, now, expected):
    assert quiet_hours_end(now, QuietHours(start, end, zone)) == expected


def test_the_spread_is_stable_per_user_and_bounded():
    offsets = {spread(f"user-{i}", 900) for i in range(200)}
    assert spread("alice", 900) == spread("alice", 900)
    assert all(timedelta(0) <= o < timedelta(seconds=900) for o in offsets)
    assert len(offsets) > 150
    assert spread("alice", 0) == timedelta(0)
