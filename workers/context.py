"""What a worker or scheduler process sets up once before it runs jobs: settings, logging,
the database engine and the Redis connection. Jobs themselves open sessions, never engines."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from dotenv import load_dotenv

from core.config import Settings, load_settings
from core.logs import configure_logging
from core.redis_client import connect
from models.db import db


@dataclass(frozen=True)
class ProcessContext:
    settings: Settings
    redis: redis.Redis


def bootstrap(settings: Settings | None = None) -> ProcessContext:
    """Load .env (development), read settings, configure logging and the database engine."""
    load_dotenv()
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    db.configure(settings.database_url)
    # RQ keeps blocking reads open longer than the API's socket timeout allows.
    return ProcessContext(settings=settings, redis=connect(settings.redis_url, socket_timeout=None))
