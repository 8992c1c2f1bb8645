"""The real-time sweep as a periodic job, for when no gateway runs it (none is up, or the
one that was died). Safe to run twice and alongside gateways: each timer is claimed
atomically."""

from __future__ import annotations

from realtime.presence import sweep
from runtime import current_runtime


def sweep_realtime() -> dict[str, int]:
    """Due presence timers, typing timeouts, coalesced updates and stale connections."""
    return sweep(current_runtime())
