"""Waiting in tests: on a condition with a deadline, never for a fixed time.

The project's rule (issue #9): tests wait on conditions, never on fixed sleeps; to show that
something did not happen, send a later thing that must arrive and check the first did not
come before it (tests/realtime/harness.py: Client.barrier, Client.received(before=...)).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL_INTERVAL = 0.05


def wait_until(
    condition: Callable[[], T],
    timeout: float = 10.0,
    *,
    interval: float = POLL_INTERVAL,
    message: str | Callable[[], str] = "",
) -> T:
    """Call `condition` until it returns something truthy, and return that.

    Raises AssertionError (with `message`, or what `message()` returns) when `timeout`
    seconds pass first. An exception from `condition` ends the wait at once. The pause
    between two calls is the only sleep a test may use to wait."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = message() if callable(message) else message
            raise AssertionError(
                f"condition not met within {timeout} s" + (f": {detail}" if detail else "")
            )
        time.sleep(interval)
