"""Frequency caps counted in Redis by one atomic script: check both caps and take one
push from each, or take nothing; no read-then-write race between workers. A chunk's
reservations (and releases) go out in one pipelined round trip, in the chunk's order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import redis

from core import keys
from core.caps import CapWindows
from stores.client import run_script_in_order

RESERVE = """
local day = tonumber(redis.call('GET', KEYS[1]) or '0')
local hour = tonumber(redis.call('GET', KEYS[2]) or '0')
if day >= tonumber(ARGV[1]) then return 1 end
if hour >= tonumber(ARGV[2]) then return 2 end
redis.call('INCR', KEYS[1])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
redis.call('INCR', KEYS[2])
redis.call('EXPIREAT', KEYS[2], ARGV[4])
return 0
"""
RELEASE = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
return 0
"""

# One push to count: the user, the notification type, and the windows it counts in.
CapRequest = tuple[str, str, CapWindows]


class Caps:
    def __init__(self, connection: redis.Redis, prefix: str, per_day: int, per_type_hour: int):
        self._redis = connection
        self._reserve = connection.register_script(RESERVE)
        self._release = connection.register_script(RELEASE)
        self._prefix = prefix
        self.per_day = per_day
        self.per_type_hour = per_type_hour

    def _keys(self, user_id: str, notification_type: str, windows: CapWindows) -> list[str]:
        return [
            keys.cap_day(self._prefix, user_id, windows.day_key),
            keys.cap_type_hour(self._prefix, user_id, notification_type, windows.hour_key),
        ]

    def reserve_many(self, requests: Sequence[CapRequest]) -> list[datetime | None]:
        """For each push in order, take one from both caps (None); when one is full, take
        nothing and give when it frees instead. Pushes of one user count against each other."""
        calls = [
            (
                self._keys(user_id, notification_type, windows),
                [
                    self.per_day,
                    self.per_type_hour,
                    int(windows.day_resets_at.timestamp()) + 60,
                    int(windows.hour_resets_at.timestamp()) + 60,
                ],
            )
            for user_id, notification_type, windows in requests
        ]
        outcomes = run_script_in_order(self._redis, self._reserve, calls)
        return [
            _frees_at(int(outcome), windows)
            for outcome, (_, _, windows) in zip(outcomes, requests, strict=True)
        ]

    def release_many(self, requests: Sequence[CapRequest]) -> None:
        """Give the pushes back: they reached no device, so they do not count."""
        calls = [(self._keys(*request), []) for request in requests]
        run_script_in_order(self._redis, self._release, calls)


def _frees_at(outcome: int, windows: CapWindows) -> datetime | None:
    if outcome == 0:
        return None
    return windows.day_resets_at if outcome == 1 else windows.hour_resets_at
