"""Fixtures for real-time tests: gateway processes on this run's PostgreSQL and Redis (one
with production-like timers, one with timers of a second or two), clients, and helpers
that make matches and tokens.

The settings in-process (the `app` fixture, used for HTTP and for matches) and the
gateways' share the JWT secret, the Redis db and a Socket.IO channel of this run's own.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.auth import mint_token
from core.catalog import MatchStatus, Role
from core.config import Settings, load_settings
from core.matching import ordered_pair
from models.db import db as database
from models.users import upsert_match
from tests.factories import make_env
from tests.realtime.harness import Client, Gateway

CHANNEL = f"pulse-test-socketio-{secrets.token_hex(4)}"
JWT_SECRET = "test-secret-" + "x" * 40

REALTIME_ENV = {
    "SOCKETIO_CHANNEL": CHANNEL,
    "JWT_SECRET": JWT_SECRET,
    "REALTIME_CONNECTION_TTL_SECONDS": "6",
    "REALTIME_SWEEP_INTERVAL_MS": "100",
    "LOG_LEVEL": "INFO",
    # The presence mechanics tests watch strangers; the private default (matches) and its
    # limits are tested on `private_gateway` (test_presence_privacy.py).
    "PRESENCE_VISIBILITY_DEFAULT": "everyone",
}
# The deployment's defaults for presence: visible to matches, few strangers an hour. Its
# own key prefix: visibility is cached in Redis under the prefix.
PRIVATE_PRESENCE = {
    "REDIS_KEY_PREFIX": "pulse-private:",
    "PRESENCE_VISIBILITY_DEFAULT": "matches",
    "PRESENCE_STRANGER_SUBSCRIPTIONS_PER_HOUR": "3",
}
# Timers short enough to watch: away after 2 s idle, offline 2 s after the last close. Its
# own key prefix: gateways sharing keys must share timers (any of them runs any timer).
FAST_TIMERS = {
    "REDIS_KEY_PREFIX": "pulse-fast:",
    "AWAY_AFTER_SECONDS": "2",
    "OFFLINE_AFTER_SECONDS": "2",
    "TYPING_TIMEOUT_SECONDS": "1",
    "PRESENCE_UPDATE_INTERVAL": "1000",
}


def realtime_env(database_url: str, redis_url: str, **overrides: str) -> dict[str, str]:
    return make_env(database_url, redis_url, **{**REALTIME_ENV, **overrides})


@pytest.fixture
def env(database_url: str, redis_url: str) -> dict[str, str]:
    """Overrides the suite's env: the in-process app speaks to the same gateways."""
    return realtime_env(database_url, redis_url)


@pytest.fixture(scope="session")
def realtime_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("realtime-logs")


@pytest.fixture(scope="session")
def gateway(database_url: str, redis_url: str, realtime_logs: Path) -> Iterator[Gateway]:
    """One gateway with the default presence timers (5 minutes / 30 minutes)."""
    process = Gateway("gateway", realtime_env(database_url, redis_url), realtime_logs)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def fast_gateway(database_url: str, redis_url: str, realtime_logs: Path) -> Iterator[Gateway]:
    """A gateway whose presence and typing timers run in a second or two."""
    process = Gateway(
        "fast-gateway", realtime_env(database_url, redis_url, **FAST_TIMERS), realtime_logs
    )
    yield process
    process.stop()


@pytest.fixture(scope="session")
def private_gateway(database_url: str, redis_url: str, realtime_logs: Path) -> Iterator[Gateway]:
    """A gateway with the deployment's private presence defaults."""
    process = Gateway(
        "private-gateway", realtime_env(database_url, redis_url, **PRIVATE_PRESENCE), realtime_logs
    )
    yield process
    process.stop()


@pytest.fixture
def test_settings(database_url: str, redis_url: str) -> Settings:
    return load_settings(realtime_env(database_url, redis_url))


@pytest.fixture
def token(test_settings: Settings) -> Callable[..., str]:
    def make(user_id: str, role: Role = Role.USER) -> str:
        return mint_token(test_settings, user_id, role)

    return make


@pytest.fixture
def users() -> Callable[[int], list[str]]:
    """Fresh user ids, unique to the test (Redis state never leaks between tests)."""

    def make(count: int) -> list[str]:
        run = uuid.uuid4().hex[:8]
        return [f"u{i}-{run}" for i in range(count)]

    return make


@pytest.fixture
def clients() -> Iterator[Callable[..., Client]]:
    """clients(gateway, token, device_id=..., low_battery=...): a connected client,
    disconnected at the end of the test."""
    made: list[Client] = []

    def make(target: Gateway, token: str | None, connect: bool = True, **auth: object) -> Client:
        client = Client(target.url, token, **auth)
        made.append(client)
        return client.connect() if connect else client

    yield make
    for client in made:
        client.disconnect()


@pytest.fixture
def match(app: object) -> Callable[..., str]:
    """match(a, b): a live match between a and b; returns its conversation id."""

    def make(
        first: str,
        second: str,
        status: MatchStatus = MatchStatus.MATCHED,
        expires_at: datetime | None = None,
    ) -> str:
        conversation_id = f"conv-{uuid.uuid4().hex[:12]}"
        user_a, user_b = ordered_pair(first, second)
        with database.session_scope() as session:
            upsert_match(
                session,
                user_a,
                user_b,
                {
                    "status": status.value,
                    "conversation_id": conversation_id,
                    "expires_at": expires_at,
                },
            )
        return conversation_id

    return make


def now_utc() -> datetime:
    return datetime.now(UTC)
