"""What real-time work needs in any process: settings, Redis stores, and an emitter that
reaches every Socket.IO connection on every gateway.

In a gateway the emitter is its own Socket.IO server (local clients get messages at once,
the others through the Redis message queue); elsewhere it is Flask-SocketIO's external
emitter, `SocketIO(message_queue=REDIS_URL)`. Never holds connection state.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import redis
from flask_socketio import SocketIO

from core.config import Settings
from models.connections import ConnectionStore
from models.presence import PresenceStore
from models.typing_state import TypingStore

NAMESPACE = "/"


@dataclass
class RealtimeContext:
    settings: Settings
    redis: redis.Redis
    emitter: Any  # flask_socketio.SocketIO: a gateway's server, or an external emitter
    connections: ConnectionStore
    presence: PresenceStore
    typing: TypingStore

    def emit(self, event: str, data: Any, to: str | list[str]) -> None:
        """Send to one room or sid, or to a list of them (no-op for an empty list)."""
        if isinstance(to, list) and not to:
            return
        self.emitter.emit(event, data, to=to, namespace=NAMESPACE)


def build_context(settings: Settings, client: redis.Redis, emitter: Any) -> RealtimeContext:
    prefix = settings.redis_key_prefix
    return RealtimeContext(
        settings=settings,
        redis=client,
        emitter=emitter,
        connections=ConnectionStore(client, prefix, settings.realtime_connection_ttl_seconds),
        presence=PresenceStore(client, prefix),
        typing=TypingStore(client, prefix),
    )


def external_emitter(settings: Settings) -> SocketIO:
    """A write-only Socket.IO emitter on the gateways' message queue."""
    return SocketIO(message_queue=settings.redis_url, channel=settings.socketio_channel)


_lock = threading.Lock()
_contexts: dict[tuple[int, str], RealtimeContext] = {}


def context_for(settings: Settings, client: redis.Redis) -> RealtimeContext:
    """This process's context for `settings` with an external emitter (API and workers);
    built once and reused."""
    cache_key = (id(client), settings.socketio_channel)
    with _lock:
        context = _contexts.get(cache_key)
        if context is None:
            context = build_context(settings, client, external_emitter(settings))
            _contexts[cache_key] = context
        return context


_gateway: RealtimeContext | None = None


def use_gateway_context(context: RealtimeContext | None) -> None:
    """A gateway process registers its own context, so that jobs it runs in-process emit
    through its server."""
    global _gateway
    _gateway = context


def worker_context() -> RealtimeContext:
    """The context for a job: the gateway's when running inside one, else this worker's."""
    if _gateway is not None:
        return _gateway
    from workers.runtime import current

    runtime = current()
    return context_for(runtime.settings, runtime.redis)


def gateway_context() -> RealtimeContext:
    """The gateway process's own context (set by api.sockets.init_gateway)."""
    if _gateway is None:
        raise RuntimeError("no gateway context: api.sockets.init_gateway was not called")
    return _gateway
