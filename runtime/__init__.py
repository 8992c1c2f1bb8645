"""The one object each process runs with: settings, Redis, the database, the token cipher,
the real-time stores, and the push providers and Socket.IO emitter, made on first use.

Each entry point builds it once (`create_app` for the API and the gateway, `bootstrap` for
the worker and the scheduler); everything else reaches it one way, `current_runtime()`.
It holds no request, job or connection state of its own.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import redis
from dotenv import load_dotenv
from flask import current_app, has_app_context
from flask_socketio import SocketIO

from core import keys
from core.catalog import Provider
from core.config import Settings, load_settings
from core.device_tokens import TokenCipher
from core.logs import configure_logging
from models.db import Database, db
from providers import PushProvider
from providers.registry import build_providers
from stores.access import check_access
from stores.client import connect
from stores.connections import ConnectionStore
from stores.presence import PresenceStore
from stores.typing import TypingStore

SINK_KEEP = 1_000
NAMESPACE = "/"
APP_EXTENSION = "pulse.runtime"


class Process(StrEnum):
    """What a runtime is built for: its pools are sized to that process's concurrency."""

    API = "api"
    GATEWAY = "gateway"
    WORKER = "worker"
    SCHEDULER = "scheduler"


# Many greenlets of a gateway share one pool: they wait for a connection rather than fail.
GATEWAY_REDIS_POOL_SIZE = 256
GATEWAY_DB_POOL_SIZE = 20
# A connection per gunicorn thread (the Procfile runs 8) without overflow churn.
API_DB_POOL_SIZE = 10


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    cipher: TokenCipher
    db: Database
    process: Process
    # This process's name among its peers (gateways' liveness records, worker names).
    node: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    connections: ConnectionStore = field(init=False)
    presence: PresenceStore = field(init=False)
    typing: TypingStore = field(init=False)
    _providers: dict[Provider, PushProvider] | None = field(default=None, repr=False)
    _emitter: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        prefix = self.settings.storage.redis_key_prefix
        self.connections = ConnectionStore(
            self.redis, prefix, self.settings.realtime.connection_ttl_seconds
        )
        self.presence = PresenceStore(self.redis, prefix)
        self.typing = TypingStore(self.redis, prefix)

    @property
    def providers(self) -> dict[Provider, PushProvider]:
        with self._lock:
            if self._providers is None:
                self._providers = build_providers(self.settings, record=self._record_sink_push)
            return self._providers

    @property
    def emitter(self) -> Any:
        """The gateway's own Socket.IO server inside a gateway (local clients get messages at
        once, the others through the message queue); elsewhere Flask-SocketIO's write-only
        external emitter on the gateways' Redis message queue."""
        with self._lock:
            if self._emitter is None:
                self._emitter = SocketIO(
                    message_queue=self.settings.realtime.message_queue_url,
                    channel=self.settings.realtime.socketio_channel,
                )
            return self._emitter

    def use_emitter(self, server: SocketIO) -> None:
        """A gateway emits through its own server."""
        with self._lock:
            self._emitter = server

    def emit(self, event: str, data: Any, to: str | list[str]) -> None:
        """Send to one room or sid, or to a list of them (no-op for an empty list)."""
        if isinstance(to, list) and not to:
            return
        self.emitter.emit(event, data, to=to, namespace=NAMESPACE)

    def _record_sink_push(self, push: dict[str, Any]) -> None:
        """Keep the development sink's last pushes in Redis for `make run` users to inspect."""
        key = keys.sink_pushes(self.settings.storage.redis_key_prefix)
        pipe = self.redis.pipeline()
        pipe.lpush(key, json.dumps(push))
        pipe.ltrim(key, 0, SINK_KEEP - 1)
        pipe.execute()

    def close(self) -> None:
        with self._lock:
            for provider in (self._providers or {}).values():
                provider.close()
            self._providers = None


def _redis_for(settings: Settings, process: Process) -> redis.Redis:
    # A wrong password or a TLS certificate that Redis refuses stops the process here, with
    # a message naming REDIS_URL, rather than leave it retrying (and the rate limits
    # failing open) for ever. A Redis that is only down is logged and waited for as usual.
    check_access(settings.storage.redis_url)
    if process is Process.GATEWAY:
        return redis.Redis(
            connection_pool=redis.BlockingConnectionPool.from_url(
                settings.storage.redis_url,
                max_connections=GATEWAY_REDIS_POOL_SIZE,
                timeout=10,
                socket_timeout=5,
                socket_connect_timeout=2,
            )
        )
    if process is Process.API:
        return connect(settings.storage.redis_url)
    # RQ keeps blocking reads open longer than the API's socket timeout allows.
    return connect(settings.storage.redis_url, socket_timeout=None)


def _configure_database(settings: Settings, process: Process) -> None:
    if process is Process.GATEWAY:
        db.configure(
            settings.storage.database_url,
            pool_size=GATEWAY_DB_POOL_SIZE,
            max_overflow=GATEWAY_DB_POOL_SIZE,
        )
    elif process is Process.API:
        db.configure(settings.storage.database_url, pool_size=API_DB_POOL_SIZE)
    else:
        # Every part of a delivery job holds a connection at once; a pool smaller than that
        # would open and close an overflow connection (a PostgreSQL backend) per session.
        db.configure(settings.storage.database_url, pool_size=settings.delivery.concurrency + 2)


_current: Runtime | None = None


def build(settings: Settings, process: Process) -> Runtime:
    """A runtime for `settings`, its pools sized for `process`. The app factory keeps its
    own in the app; `configure` makes one this process's."""
    _configure_database(settings, process)
    cipher_cache = 20_000 if process is Process.WORKER else 0
    return Runtime(
        settings=settings,
        redis=_redis_for(settings, process),
        cipher=TokenCipher(
            settings.auth.token_encryption_keys,
            settings.auth.token_hash_key,
            decrypted_cache_size=cipher_cache,
        ),
        db=db,
        process=process,
    )


def configure(settings: Settings, process: Process = Process.WORKER) -> Runtime:
    """Build this process's runtime (closing the previous one's providers) and return it."""
    global _current
    if _current is not None:
        _current.close()
    _current = build(settings, process)
    return _current


def bootstrap(process: Process = Process.WORKER) -> Runtime:
    """For a worker or scheduler process: .env (development), settings, logging, runtime."""
    load_dotenv()
    settings = load_settings()
    configure_logging(settings.log_level)
    return configure(settings, process)


def current_runtime() -> Runtime:
    """The runtime: inside a Flask app context, that app's (tests build several apps in one
    process); elsewhere the one this process's entry point configured."""
    if has_app_context() and APP_EXTENSION in current_app.extensions:
        return current_app.extensions[APP_EXTENSION]
    if _current is None:
        raise RuntimeError(
            "no runtime: the entry point must call runtime.configure() or runtime.bootstrap()"
        )
    return _current


def shutdown() -> None:
    """Close the providers' connections and forget the runtime (end of a process or test)."""
    global _current
    if _current is not None:
        _current.close()
    _current = None
