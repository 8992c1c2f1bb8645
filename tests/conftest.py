"""Shared fixtures: a throwaway PostgreSQL database migrated once per run, a Redis db of
this run's own, an app per test, and helpers for tokens and rows.

Nothing is mocked: tests talk to a real PostgreSQL and a real Redis (local ones when they
answer, embedded ones started here when they do not).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from alembic import command
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from api import create_app
from api.auth import mint_token
from core.catalog import Role
from core.config import Settings, load_settings
from models import Base
from models.db import db as database
from tests.factories import EXPO_TOKEN, alembic_config, make_env
from tests.services import (
    create_database,
    drop_database,
    resolve_postgres_admin_url,
    resolve_redis_url,
)

pytest_plugins = ["tests.standins.fixtures"]

REDIS_DB_LOCK_TTL = 3 * 3600


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    url, stop = resolve_postgres_admin_url()
    yield url
    if stop:
        stop()


@pytest.fixture(scope="session")
def database_url(postgres_admin_url: str) -> Iterator[str]:
    """A database of this run's own, migrated to head by Alembic (the only schema maker)."""
    name = f"pulse_test_{secrets.token_hex(4)}"
    url = create_database(postgres_admin_url, name)
    command.upgrade(alembic_config(url), "head")
    yield url
    database.dispose()
    drop_database(postgres_admin_url, name)


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    url, stop = resolve_redis_url()
    yield url
    if stop:
        stop()


@pytest.fixture(scope="session")
def redis_url(redis_server_url: str) -> Iterator[str]:
    """A Redis database number that no other concurrent run holds (RQ's keys have no prefix)."""
    base = (
        redis_server_url.rsplit("/", 1)[0] if redis_server_url.count("/") > 2 else redis_server_url
    )
    locks = redis.Redis.from_url(f"{base}/0")
    token = secrets.token_hex(8)
    for number in range(1, 16):
        if locks.set(f"pulse-test-lock:{number}", token, nx=True, ex=REDIS_DB_LOCK_TTL):
            break
    else:
        pytest.exit("every Redis db 1-15 is held by another test run", returncode=3)
    url = f"{base}/{number}"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()
    if locks.get(f"pulse-test-lock:{number}") == token.encode():
        locks.delete(f"pulse-test-lock:{number}")


@pytest.fixture
def env(database_url: str, redis_url: str) -> dict[str, str]:
    return make_env(database_url, redis_url)


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(env)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.flushdb()
    client.close()


def _truncate_all() -> None:
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with database.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def app(settings: Settings, redis_client: redis.Redis) -> Iterator[Flask]:
    application = create_app(settings)
    application.config["TESTING"] = True
    yield application
    _truncate_all()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_app_client(app: Flask, env: dict[str, str]) -> Callable[..., FlaskClient]:
    """make_app_client(DEFAULT_TIMEZONE="Europe/Berlin"): a client of an app whose settings
    differ from the suite's by these variables (same database and Redis db)."""

    def make(**overrides: str) -> FlaskClient:
        other = create_app(load_settings({**env, **overrides}))
        other.config["TESTING"] = True
        return other.test_client()

    return make


@pytest.fixture
def db_session(app: Flask) -> Iterator[Session]:
    session = database.session()
    yield session
    session.close()


@pytest.fixture
def auth_header(settings: Settings) -> Callable[..., dict[str, str]]:
    """auth_header("alice") or auth_header("ops", Role.ADMIN): a valid Authorization header."""

    def make(user_id: str, role: Role = Role.USER) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(settings, user_id, role)}"}

    return make


@pytest.fixture
def register(client: FlaskClient, auth_header: Callable[..., dict[str, str]]) -> Callable[..., Any]:
    """register("alice", token=..., platform=...): POST register-token and return the response."""

    def make(user_id: str, token: str = EXPO_TOKEN, platform: str = "ios", **fields: Any) -> Any:
        return client.post(
            "/api/v1/notifications/register-token",
            json={"token": token, "platform": platform, **fields},
            headers=auth_header(user_id),
        )

    return make
