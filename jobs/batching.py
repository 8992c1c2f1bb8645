"""Batch windows in Redis: the first notification of a key in a window opens it (and goes
out at once); a notification that finds the window open is held for the summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis


class BatchWindows:
    def __init__(self, connection: redis.Redis, prefix: str, window_seconds: int):
        self._redis = connection
        self._prefix = prefix
        self.window = timedelta(seconds=window_seconds)
        self._window_ms = max(1, window_seconds * 1000)

    def open_or_join(self, key: str, now: datetime) -> datetime | None:
        """None when this notification opened the window (send it now); otherwise the
        moment the open window closes (hold it for the summary)."""
        closes = now + self.window
        name = f"{self._prefix}batch:{key}"
        for _ in range(2):  # once more if the window closed between SET and GET
            if self._redis.set(name, closes.timestamp(), nx=True, px=self._window_ms):
                return None
            value = self._redis.get(name)
            if value is not None:
                return datetime.fromtimestamp(float(value), UTC)
        return closes
