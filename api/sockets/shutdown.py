"""A gateway stopping on purpose hands its connections back at once: each is closed in
Redis as a disconnect would (presence, watchers, typing), instead of waiting for the TTL."""

from __future__ import annotations

import logging
import time

import redis
from flask import Flask

from api.sockets.local import CONNECTIONS
from realtime.presence import connection_closed
from runtime import APP_EXTENSION

log = logging.getLogger(__name__)


def close_own_connections(app: Flask) -> None:
    context = app.extensions.get(APP_EXTENSION)
    if context is None:
        return
    now = time.time()
    for sid, conn in list(CONNECTIONS.items()):
        try:
            connection_closed(context, conn.user_id, sid, conn.record.device_key, now)
        except Exception as exc:  # stopping anyway: the TTL sweep finishes the job
            log.warning("event=close_on_stop_failed sid=%s error_type=%s", sid, type(exc).__name__)
        CONNECTIONS.pop(sid, None)
    try:
        context.connections.mark_gateway_gone(context.node)
    except redis.RedisError as exc:  # its liveness record expires on its own
        log.warning("event=gateway_gone_not_recorded error_type=%s", type(exc).__name__)
