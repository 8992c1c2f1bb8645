"""The Socket.IO gateway: Flask-SocketIO bound to the app with the Redis message queue
(so that any number of gateways, and workers through the external emitter, reach every
connection), the handlers per concern, and the background loop.

Handlers are thin: they validate through api.sockets.guard and call jobs.presence /
jobs.typing. No connection state that another process needs is kept here.
"""

from __future__ import annotations

import logging
import os
import socket

import redis
from flask import Flask

from api.extensions import socketio
from core.config import Settings
from jobs.realtime_context import build_context, use_gateway_context
from models.db import db

log = logging.getLogger(__name__)

REDIS_POOL_SIZE = 256
DB_POOL_SIZE = 20


def init_gateway(app: Flask, settings: Settings, async_mode: str) -> None:
    from api.sockets import connection, guard, presence, typing  # noqa: F401  (handlers)
    from api.sockets.loop import run_loop

    origins = settings.realtime_allowed_origins
    socketio.init_app(
        app,
        async_mode=async_mode,
        message_queue=settings.redis_url,
        channel=settings.socketio_channel,
        cors_allowed_origins=list(origins) if isinstance(origins, tuple) else origins,
        max_http_buffer_size=settings.socket_max_message_bytes,
        manage_session=False,
        logger=False,
        engineio_logger=False,
    )
    # Many greenlets share one pool: they wait for a connection rather than fail.
    client = redis.Redis(
        connection_pool=redis.BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=REDIS_POOL_SIZE,
            timeout=10,
            socket_timeout=5,
            socket_connect_timeout=2,
        )
    )
    app.extensions["pulse.redis"] = client
    db.configure(settings.database_url, pool_size=DB_POOL_SIZE, max_overflow=DB_POOL_SIZE)
    context = build_context(settings, client, socketio)
    use_gateway_context(context)
    app.extensions["pulse.realtime"] = context
    node = f"{socket.gethostname()}-{os.getpid()}"
    app.extensions["pulse.gateway_node"] = node
    socketio.start_background_task(run_loop, context, socketio.sleep, node)
    log.info("event=gateway_ready node=%s async_mode=%s", node, async_mode)
