"""One way to open a Redis connection, with timeouts so that a dead Redis fails fast, and
one way to run a Lua script for many keys in a single round trip."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError


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
