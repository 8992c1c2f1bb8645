"""Per-user rate limits in Redis (failing open when Redis is down), and the health probes."""

from __future__ import annotations

import pytest

from api import create_app
from core.config import load_settings
from models import PushToken
from tests.factories import EXPO_TOKEN, make_env

REGISTER = "/api/v1/notifications/register-token"
SETTINGS = "/api/v1/notifications/settings"
CLOSED_REDIS = "redis://127.0.0.1:1/0"


def test_register_token_allows_10_an_hour_per_user(client, auth_header):
    statuses = [
        client.post(
            REGISTER, json={"token": EXPO_TOKEN, "platform": "ios"}, headers=auth_header("alice")
        ).status_code
        for _ in range(11)
    ]
    other_user = client.post(
        REGISTER, json={"token": EXPO_TOKEN, "platform": "ios"}, headers=auth_header("bob")
    )

    assert statuses[:10] == [201] + [200] * 9
    assert statuses[10] == 429
    assert other_user.status_code == 201


def test_a_limited_request_is_429_in_the_envelope_with_retry_after(client, auth_header, db_session):
    for _ in range(10):
        client.post(
            REGISTER, json={"token": EXPO_TOKEN, "platform": "ios"}, headers=auth_header("alice")
        )

    response = client.post(
        REGISTER,
        json={"token": "ExponentPushToken[another-one-000000]", "platform": "ios"},
        headers=auth_header("alice"),
    )

    assert response.status_code == 429
    assert response.json["success"] is False
    assert response.json["error"]["code"] == "rate_limited"
    assert "10 per 1 hour" in response.json["error"]["details"]["limit"]
    assert 0 < int(response.headers["Retry-After"]) <= 3600
    assert db_session.query(PushToken).count() == 1


def test_settings_allow_20_an_hour_per_user(client, auth_header):
    statuses = [client.get(SETTINGS, headers=auth_header("alice")).status_code for _ in range(21)]
    assert statuses == [200] * 20 + [429]


def test_a_success_carries_no_retry_after(client, auth_header):
    response = client.get(SETTINGS, headers=auth_header("alice"))
    assert "Retry-After" not in response.headers
    assert response.headers["X-RateLimit-Limit"] == "20"


@pytest.fixture
def app_without_redis(database_url):
    app = create_app(load_settings(make_env(database_url, CLOSED_REDIS)))
    yield app


def test_limits_fail_open_when_redis_is_down(app_without_redis, auth_header, caplog):
    client = app_without_redis.test_client()
    statuses = [
        client.post(
            REGISTER, json={"token": EXPO_TOKEN, "platform": "ios"}, headers=auth_header("alice")
        ).status_code
        for _ in range(12)
    ]
    assert statuses == [201] + [200] * 11
    assert any(
        "rate limit" in r.getMessage().lower() or r.name == "flask-limiter" for r in caplog.records
    )


def test_healthz_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"success": True, "data": {"status": "ok"}}


def test_readyz_checks_postgres_and_redis(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    # No scheduler runs in this test: the schedule is reported missing, and the API is still
    # ready (a missing schedule is not this instance's to fix).
    assert response.json["data"] == {
        "status": "ready",
        "postgresql": "ok",
        "redis": "ok",
        "schedule": "missing",
    }


def test_readyz_names_redis_when_it_is_down(app_without_redis):
    response = app_without_redis.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["error"]["code"] == "not_ready"
    assert set(response.json["error"]["details"]) == {"redis"}
    assert "redis" in response.json["error"]["message"]


def test_readyz_names_postgresql_when_it_is_down(redis_url):
    app = create_app(
        load_settings(make_env("postgresql://postgres@127.0.0.1:1/nowhere", redis_url))
    )
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert set(response.json["error"]["details"]) == {"postgresql"}
