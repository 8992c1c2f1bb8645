"""One way to open a Redis connection, with timeouts so that a dead Redis fails fast; one
way to run a Lua script for many keys in a single round trip; and one way to live through
Redis going away (`UNAVAILABLE`, `RedisOutage`: capped, jittered backoff, one log line when
it goes and one when it is back)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

log = logging.getLogger(__name__)


def connect(url: str, **overrides: object) -> redis.Redis:
    options: dict[str, object] = {
        "socket_timeout": 5,
        "socket_connect_timeout": 2,
        "health_check_interval": 30,
        "retry_on_timeout": False,
    }
    options.update(overrides)
    return redis.Redis.from_url(url, **options)


def run_script_in_order(
    connection: redis.Redis, script: Script, calls: Sequence[tuple[list[Any], list[Any]]]
) -> list[Any]:
    """Run `script` once per (keys, args), in order, in one pipelined round trip.

    Not redis-py's `script(..., client=pipe)`: that pipeline asks SCRIPT EXISTS before each
    execute, a second round trip. The server keeps a loaded script until it restarts or is
    flushed; the calls that found it missing are run again, in order, once it is loaded
    (each call stays atomic; only a flush in the middle of the pipeline reorders them)."""
    results = _evalsha_each(connection, script.sha, calls)
    missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
    if missing:
        script.sha = connection.script_load(script.script)
        again = _evalsha_each(connection, script.sha, [calls[i] for i in missing])
        for i, result in zip(missing, again, strict=True):
            results[i] = result
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def _evalsha_each(
    connection: redis.Redis, sha: str, calls: Sequence[tuple[list[Any], list[Any]]]
) -> list[Any]:
    pipe = connection.pipeline(transaction=False)
    for keys, args in calls:
        pipe.evalsha(sha, len(keys), *keys, *args)
    return pipe.execute(raise_on_error=False)


# --- a Redis that stops answering ---------------------------------------------------------

# What says "Redis is not there" rather than "this command is wrong": a refused or dropped
# connection, a timeout, a server still loading its data (BusyLoadingError is a
# ConnectionError), or a replica that a failover left read-only.
UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
)

RECONNECT_BASE_SECONDS = 0.5
RECONNECT_CAP_SECONDS = 5.0


def backoff_delay(
    attempt: int, base: float = RECONNECT_BASE_SECONDS, cap: float = RECONNECT_CAP_SECONDS
) -> float:
    """Seconds to wait before attempt `attempt` + 1 (`attempt` counts from 1): doubling from
    `base`, capped at `cap`, with equal jitter (between half of it and all of it), so that
    many processes that lost Redis together do not all knock at the same moment."""
    ceiling = min(cap, base * 2 ** min(max(attempt, 1) - 1, 32))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class RedisOutage:
    """One process's view of whether Redis answers: one log line when it stops answering,
    one when it answers again (never a line or a traceback per attempt), and how long to
    wait before the next attempt (`backoff_delay`).

    `failed(exc)` after an attempt that found Redis gone, `recovered()` after one that
    reached it; `wait_until_back(ping)` waits out a whole outage. Not thread-safe: one per
    loop."""

    def __init__(
        self,
        process: str,
        logger: logging.Logger | None = None,
        *,
        base: float = RECONNECT_BASE_SECONDS,
        cap: float = RECONNECT_CAP_SECONDS,
    ) -> None:
        self.process = process
        self.log = logger or log
        self.base = base
        self.cap = cap
        self.attempts = 0
        self._since: float | None = None

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> float:
        """Note a failed attempt; returns the seconds to wait before the next one."""
        if self._since is None:
            self._since = time.monotonic()
            self.log.warning(
                "event=redis_unavailable process=%s error_type=%s retry=backoff cap_seconds=%g",
                self.process,
                type(exc).__name__,
                self.cap,
            )
        self.attempts += 1
        return backoff_delay(self.attempts, self.base, self.cap)

    def recovered(self) -> None:
        """Note an attempt that reached Redis (logs only the first after an outage)."""
        if self._since is None:
            return
        self.log.warning(
            "event=redis_back process=%s down_seconds=%.1f attempts=%d",
            self.process,
            time.monotonic() - self._since,
            self.attempts,
        )
        self._since = None
        self.attempts = 0

    def wait_until_back(
        self,
        ping: Callable[[], object],
        exc: BaseException,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        """After `exc` (one of UNAVAILABLE): wait with backoff until `ping()` answers."""
        delay = self.failed(exc)
        while True:
            sleep(delay)
            try:
                ping()
            except UNAVAILABLE as again:
                delay = self.failed(again)
                continue
            self.recovered()
            return
