"""The Socket.IO gateway: Flask-SocketIO bound to the app with the Redis message queue
(so that any number of gateways, and workers through the external emitter, reach every
connection), the handlers per concern, and the background loop.

Handlers are thin: they validate through api.sockets.guard and call realtime.presence /
realtime.typing. No connection state that another process needs is kept here.
"""

from __future__ import annotations

import logging

from flask import Flask

from api.extensions import socketio
from api.sockets import connection, guard, presence, typing  # noqa: F401  (handlers register on import)
from api.sockets.loop import run_loop
from api.sockets.message_queue import PulseRedisManager
from runtime import Runtime

log = logging.getLogger(__name__)


def init_gateway(app: Flask, runtime: Runtime, async_mode: str) -> None:
    settings = runtime.settings
    origins = settings.realtime.allowed_origins
    socketio.init_app(
        app,
        async_mode=async_mode,
        client_manager=PulseRedisManager(
            settings.realtime.message_queue_url, channel=settings.realtime.socketio_channel
        ),
        cors_allowed_origins=list(origins) if isinstance(origins, tuple) else origins,
        max_http_buffer_size=settings.realtime.max_message_bytes,
        manage_session=False,
        logger=False,
        engineio_logger=False,
    )
    runtime.use_emitter(socketio)
    socketio.start_background_task(run_loop, runtime, socketio.sleep, runtime.node)
    log.info("event=gateway_ready node=%s async_mode=%s", runtime.node, async_mode)
