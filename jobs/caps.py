"""Frequency caps counted in Redis by one atomic script: check both caps and take one
push from each, or take nothing; no read-then-write race between workers."""

from __future__ import annotations

from datetime import datetime

import redis

from core.caps import CapWindows

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


class Caps:
    def __init__(self, connection: redis.Redis, prefix: str, per_day: int, per_type_hour: int):
        self._reserve = connection.register_script(RESERVE)
        self._release = connection.register_script(RELEASE)
        self._prefix = prefix
        self.per_day = per_day
        self.per_type_hour = per_type_hour

    def _keys(self, user_id: str, notification_type: str, windows: CapWindows) -> list[str]:
        return [
            f"{self._prefix}cap:day:{user_id}:{windows.day_key}",
            f"{self._prefix}cap:hour:{user_id}:{notification_type}:{windows.hour_key}",
        ]

    def reserve(self, user_id: str, notification_type: str, windows: CapWindows) -> datetime | None:
        """Take one push from both caps; when one is full, return when it frees instead."""
        outcome = int(
            self._reserve(
                keys=self._keys(user_id, notification_type, windows),
                args=[
                    self.per_day,
                    self.per_type_hour,
                    int(windows.day_resets_at.timestamp()) + 60,
                    int(windows.hour_resets_at.timestamp()) + 60,
                ],
            )
        )
        if outcome == 0:
            return None
        return windows.day_resets_at if outcome == 1 else windows.hour_resets_at

    def release(self, user_id: str, notification_type: str, windows: CapWindows) -> None:
        """Give the push back: it reached no device, so it does not count."""
        self._release(keys=self._keys(user_id, notification_type, windows))
