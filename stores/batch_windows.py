"""Batch windows in Redis: the first notification of a key in a window opens it (and goes
out at once); a notification that finds the window open is held for the summary. A chunk's
notifications open or join their windows in one pipelined round trip, in the chunk's order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import redis

from core import keys
from stores.client import run_script_in_order

# Open the window (nil), or give when the open one closes: atomic, so a window that closes
# between the two steps cannot be missed.
OPEN_OR_JOIN = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('GET', KEYS[1])
"""


class BatchWindows:
    def __init__(self, connection: redis.Redis, prefix: str, window_seconds: int):
        self._redis = connection
        self._open_or_join = connection.register_script(OPEN_OR_JOIN)
        self._prefix = prefix
        self.window = timedelta(seconds=window_seconds)
        self._window_ms = max(1, window_seconds * 1000)

    def open_or_join_many(
        self, batch_keys: Sequence[str], now: datetime
    ) -> list[datetime | None]:
        """For each key in order: None when this notification opened the window (send it
        now); otherwise the moment the open window closes (hold it for the summary). The
        same key twice: the first opens, the second joins."""
        closes = (now + self.window).timestamp()
        calls = [
            ([keys.batch_window(self._prefix, key)], [closes, self._window_ms])
            for key in batch_keys
        ]
        return [
            None if value is None else datetime.fromtimestamp(float(value), UTC)
            for value in run_script_in_order(self._redis, self._open_or_join, calls)
        ]
