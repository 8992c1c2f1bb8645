"""Typing indicator rules: when a progress event may be forwarded, and when typing stops
by itself. Pure: times in (monotonic or epoch seconds), decisions out; no I/O."""

from __future__ import annotations


def progress_allowed(last_forwarded: float | None, now: float, min_interval_ms: int) -> bool:
    """At most one typing_progress per `min_interval_ms` per connection; the rest are
    dropped (the next one carries the newer count)."""
    return last_forwarded is None or (now - last_forwarded) * 1000 >= min_interval_ms


def stops_at(last_signal: float, timeout_seconds: int) -> float:
    """Typing stops automatically `timeout_seconds` after the last start or progress."""
    return last_signal + timeout_seconds
