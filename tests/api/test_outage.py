"""PostgreSQL or Redis down for a moment (issue #10, point 7): a real outage, not a mock.

The app (and an in-process RQ worker) reach the real servers through TCP proxies
(tests/tcp_proxy.py) that the test stops and starts: stopping one cuts every open
connection and refuses new ones, which is what a server restart shows a client. Meanwhile
every call that needs the dependency answers 503 `unavailable` naming it, with Retry-After;
a bug stays a 500; and once the dependency is back the same calls succeed and every send
accepted before or during the outage is delivered.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import make_url

import runtime as worker_runtime
from api import create_app
from api.errors import RETRY_AFTER_SECONDS
from core import keys
from core.catalog import Role
from core.config import load_settings
from models.db import db as database
from tests.conftest import _truncate_all
from tests.factories import NO_QUIET_HOURS, expo_token, make_env
from tests.pipeline.conftest import Pipeline
from tests.tcp_proxy import TcpProxy


@pytest.fixture
def pg_proxy(database_url: str) -> Iterator[TcpProxy]:
    url = make_url(database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[TcpProxy]:
    url = urlsplit(redis_url)
    with TcpProxy(url.hostname or "127.0.0.1", url.port or 6379) as proxy:
        yield proxy


@dataclass
class Outage:
    """The API and a worker whose PostgreSQL and Redis go through proxies a test stops."""

    pipeline: Pipeline
    postgresql: TcpProxy
    redis: TcpProxy

    @property
    def client(self) -> Any:
        return self.pipeline.client

    def header(self, user_id: str, role: Role = Role.USER) -> dict[str, str]:
        return self.pipeline.header(user_id, role)

    def send(self, user_id: str) -> Any:
        return self.client.post(
            "/api/v1/notifications/send",
            json={"notification_type": "new_match", "target": {"user_ids": [user_id]}},
            headers=self.header("matching", Role.SERVICE),
        )

    def calls(self, user_id: str) -> dict[str, Any]:
        """One of each call the issue names (and the rest of the user's), as `user_id`."""
        me = self.header(user_id)
        return {
            "register-token": self.client.post(
                "/api/v1/notifications/register-token",
                json={"token": expo_token(uuid.uuid4().int % 10**20), "platform": "ios"},
                headers=me,
            ),
            "get settings": self.client.get("/api/v1/notifications/settings", headers=me),
            "put settings": self.client.put(
                "/api/v1/notifications/settings",
                json={"quiet_hours": {"start": "00:00", "end": "00:00"}},
                headers=me,
            ),
            "send": self.send(f"nobody-{uuid.uuid4().hex[:8]}"),
            "inbox": self.client.get("/api/v1/notifications?limit=5", headers=me),
            "realtime status": self.client.get("/api/v1/realtime/status", headers=me),
            "heartbeat": self.client.post(
                "/api/v1/realtime/heartbeat",
                json={"device_id": f"d-{uuid.uuid4().hex[:8]}"},
                headers=me,
            ),
        }

    def deliver(self) -> None:
        """What the scheduler and the workers do: the outbox sweep, then every queued job."""
        self.pipeline.sweep()
        self.pipeline.work()

    def status_of(self, notification_id: str) -> str:
        return self.pipeline.notification(notification_id)["status"]

    def pushes(self, redis_client: redis.Redis) -> list[dict[str, Any]]:
        """What the development sink recorded (provider, type, title; never the token)."""
        key = keys.sink_pushes(self.pipeline.settings.storage.redis_key_prefix)
        return [json.loads(raw) for raw in redis_client.lrange(key, 0, -1)]


@pytest.fixture
def outage(
    database_url: str,
    redis_url: str,
    pg_proxy: TcpProxy,
    redis_proxy: TcpProxy,
    redis_client: redis.Redis,
) -> Iterator[Outage]:
    settings = load_settings(
        make_env(
            pg_proxy.url_for(database_url),
            redis_proxy.url_for(redis_url),
            PULSE_ENV="development",  # no push credentials: every push goes to the sink
            OUTBOX_REENQUEUE_AFTER_SECONDS="0",  # the sweep takes any pending row at once
            RATE_LIMIT_REGISTER_TOKEN="1000 per hour",
            RATE_LIMIT_SETTINGS="1000 per hour",
            **NO_QUIET_HOURS,
        )
    )
    app = create_app(settings)
    app.config["TESTING"] = True
    yield Outage(Pipeline(app, worker_runtime.configure(settings)), pg_proxy, redis_proxy)
    pg_proxy.start()
    redis_proxy.start()
    worker_runtime.shutdown()
    _truncate_all()
    database.configure(database_url)  # not through a proxy about to close


def assert_unavailable(response: Any, dependency: str, where: str) -> None:
    assert response.status_code == 503, f"{where}: {response.status_code} {response.json}"
    error = response.json["error"]
    assert response.json["success"] is False
    assert error["code"] == "unavailable", where
    assert error["details"] == {"dependency": dependency}, where
    assert {"postgresql": "PostgreSQL", "redis": "Redis"}[dependency] in error["message"], where
    assert int(response.headers["Retry-After"]) == RETRY_AFTER_SECONDS, where


def test_postgresql_down_is_a_503_naming_it_and_nothing_accepted_is_lost(
    outage: Outage, redis_client: redis.Redis
):
    outage.pipeline.register("alice", expo_token(1), "ios")
    accepted = outage.send("alice")
    assert accepted.status_code == 202, accepted.json
    [notification_id] = accepted.json["data"]["notification_ids"]

    outage.postgresql.stop()

    for name, response in outage.calls("bob").items():
        assert_unavailable(response, "postgresql", name)
    ready = outage.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["error"]["code"] == "not_ready"
    assert set(ready.json["error"]["details"]) == {"postgresql"}
    assert int(ready.headers["Retry-After"]) == RETRY_AFTER_SECONDS
    # A worker that takes the job meanwhile fails it: the rows stay in PostgreSQL.
    outage.pipeline.work()
    assert outage.pushes(redis_client) == []

    outage.postgresql.start()

    for name, response in outage.calls("bob").items():
        assert response.status_code in (200, 201, 202), f"{name}: {response.json}"
    assert outage.client.get("/readyz").status_code == 200
    outage.deliver()
    detail = outage.pipeline.notification(notification_id)
    assert detail["status"] == "sent"
    # Exactly one attempt to alice's one device: nothing lost, nothing sent twice.
    assert [(d["provider"], d["status"]) for d in detail["deliveries"]] == [("expo", "sent")], (
        detail["deliveries"],
        outage.pushes(redis_client),
    )
    assert "expo" in [push["provider"] for push in outage.pushes(redis_client)]


def test_redis_down_is_a_503_where_a_call_needs_it_and_sends_wait_in_postgresql(
    outage: Outage, redis_client: redis.Redis
):
    outage.pipeline.register("alice", expo_token(2), "ios")

    outage.redis.stop()

    calls = outage.calls("bob")
    # Presence lives in Redis: the heartbeat cannot be recorded.
    assert_unavailable(calls.pop("heartbeat"), "redis", "heartbeat")
    # The status reports the gateways as unavailable rather than failing (its own answer).
    status = calls.pop("realtime status")
    assert status.status_code == 200, status.json
    assert status.json["data"]["server_status"] == "unavailable"
    # The rest need PostgreSQL only; their rate limits fail open.
    for name, response in calls.items():
        assert response.status_code in (200, 201, 202), f"{name}: {response.json}"
    during = outage.send("alice")
    assert during.status_code == 202, during.json
    [notification_id] = during.json["data"]["notification_ids"]
    ready = outage.client.get("/readyz")
    assert ready.status_code == 503
    assert set(ready.json["error"]["details"]) == {"redis"}

    outage.redis.start()

    heartbeat = outage.client.post(
        "/api/v1/realtime/heartbeat", json={}, headers=outage.header("alice")
    )
    assert heartbeat.status_code == 200, heartbeat.json
    assert outage.client.get("/readyz").status_code == 200
    # Its enqueue failed while Redis was down: the outbox sweep finds the row.
    outage.deliver()
    assert outage.status_of(notification_id) == "sent"
    assert [push["provider"] for push in outage.pushes(redis_client)] == ["expo"]


def test_a_bug_in_a_dependency_call_stays_a_500(outage: Outage):
    """Only an unreachable dependency is a 503: a query or a command that is wrong is a bug,
    even though PostgreSQL or Redis raised it."""
    app: Flask = outage.pipeline.app

    @app.get("/bad-sql")
    def bad_sql() -> dict[str, Any]:
        with database.session_scope() as session:
            session.execute(text("SELECT * FROM no_such_table"))
        return {}

    @app.get("/bad-redis-command")
    def bad_redis_command() -> dict[str, Any]:
        connection = worker_runtime.current_runtime().redis
        connection.set("pulse-test:not-a-number", "a")
        connection.incr("pulse-test:not-a-number")  # ResponseError: not an integer
        return {}

    for path in ("/bad-sql", "/bad-redis-command"):
        response = outage.client.get(path)
        assert response.status_code == 500, path
        assert response.json["error"]["code"] == "server_error"
        assert "Retry-After" not in response.headers
