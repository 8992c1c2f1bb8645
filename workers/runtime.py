"""The per-process context that jobs run in: settings, Redis, the token cipher and the push
providers, built once per worker process and reused across jobs (so that APNs keeps its
HTTP/2 connection). Jobs call `current()`; nothing here holds request or job state.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import redis
from dotenv import load_dotenv

from core import keys
from core.catalog import Provider
from core.config import Settings, load_settings
from core.device_tokens import TokenCipher
from core.logs import configure_logging
from core.redis_client import connect
from models.db import db
from workers.providers import PushProvider, build_providers

SINK_KEEP = 1_000


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    cipher: TokenCipher
    _providers: dict[Provider, PushProvider] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def providers(self) -> dict[Provider, PushProvider]:
        with self._lock:
            if self._providers is None:
                self._providers = build_providers(self.settings, record=self._record_sink_push)
            return self._providers

    def _record_sink_push(self, push: dict[str, Any]) -> None:
        """Keep the development sink's last pushes in Redis for `make run` users to inspect."""
        key = keys.sink_pushes(self.settings.redis_key_prefix)
        pipe = self.redis.pipeline()
        pipe.lpush(key, json.dumps(push))
        pipe.ltrim(key, 0, SINK_KEEP - 1)
        pipe.execute()

    def close(self) -> None:
        with self._lock:
            for provider in (self._providers or {}).values():
                provider.close()
            self._providers = None


_current: Runtime | None = None


def configure(settings: Settings, *, configure_database: bool = True) -> Runtime:
    """Set this process's runtime (closing the previous one's providers)."""
    global _current
    if _current is not None:
        _current.close()
    if configure_database:
        # Every part of a delivery job holds a connection at once; a pool smaller than that
        # would open and close an overflow connection (a PostgreSQL backend) per session.
        db.configure(settings.database_url, pool_size=settings.delivery_concurrency + 2)
    _current = Runtime(
        settings=settings,
        # RQ keeps blocking reads open longer than the API's socket timeout allows.
        redis=connect(settings.redis_url, socket_timeout=None),
        cipher=TokenCipher(
            settings.token_encryption_keys, settings.token_hash_key, decrypted_cache_size=20_000
        ),
    )
    return _current


def bootstrap() -> Runtime:
    """For a worker or scheduler process: .env (development), settings, logging, database."""
    load_dotenv()
    settings = load_settings()
    configure_logging(settings.log_level)
    return configure(settings)


def current() -> Runtime:
    """The runtime jobs use; a process that never configured one builds it from the env."""
    return _current if _current is not None else bootstrap()


def shutdown() -> None:
    """Close the providers' connections and forget the runtime (end of a process or test)."""
    global _current
    if _current is not None:
        _current.close()
    _current = None
