"""The gateway's background loop: due presence timers, typing timeouts, coalesced
updates and stale connections (claimed atomically, so every gateway may run it), and
keeping this process's own connection records alive while engine.io says they are.

It never raises: a failed round is logged and the next one runs. While Redis does not
answer, it logs one line when it goes and one when it is back (not a traceback a tick) and
tries again with a capped, jittered backoff; its first round after that refreshes this
gateway's connection records at once (a Redis that came back empty lost them).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from api.sockets.local import CONNECTIONS
from realtime.presence import sweep
from runtime import Runtime
from stores.client import UNAVAILABLE, RedisOutage

log = logging.getLogger(__name__)


def refresh_own_connections(ctx: Runtime, node: str, now: float) -> None:
    held = [(conn.user_id, sid) for sid, conn in list(CONNECTIONS.items())]
    for sid in ctx.connections.refresh(held, now):
        conn = CONNECTIONS.get(sid)
        if conn is not None:
            # Swept as stale while this process was stalled: put the record back.
            ctx.connections.add(conn.record)


def run_loop(ctx: Runtime, sleep: Any, node: str) -> None:
    """Forever: say this gateway is alive and sweep every REALTIME_SWEEP_INTERVAL_MS;
    refresh this gateway's connection records every TTL/3."""
    tick = ctx.settings.realtime.sweep_interval_ms / 1000
    refresh_every = max(1.0, ctx.settings.realtime.connection_ttl_seconds / 3)
    next_refresh = 0.0
    outage = RedisOutage("gateway", log)
    while True:
        pause = tick
        try:
            now = time.time()
            ctx.connections.mark_gateway_alive(node, now + refresh_every * 3)
            if now >= next_refresh:
                refresh_own_connections(ctx, node, now)
                next_refresh = now + refresh_every
            sweep(ctx, now)
            outage.recovered()
        except UNAVAILABLE as exc:
            pause = max(tick, outage.failed(exc))
            next_refresh = 0.0
        except Exception as exc:
            log.exception("event=gateway_loop_failed error_type=%s", type(exc).__name__)
        sleep(pause)
