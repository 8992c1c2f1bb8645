"""One way to open a Redis connection, with timeouts so that a dead Redis fails fast."""

from __future__ import annotations

import redis


def connect(url: str, **overrides: object) -> redis.Redis:
    options: dict[str, object] = {
        "socket_timeout": 5,
        "socket_connect_timeout": 2,
        "health_check_interval": 30,
        "retry_on_timeout": False,
    }
    options.update(overrides)
    return redis.Redis.from_url(url, **options)
