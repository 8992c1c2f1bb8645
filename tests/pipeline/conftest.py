"""Fixtures for end-to-end pipeline tests: the API and a real RQ worker in this process,
with the real provider clients pointed at the stand-ins."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

import runtime as worker_runtime
from api import create_app
from core.catalog import Role
from core.config import load_settings
from intake.queues import make_worker
from jobs.outbox import sweep_outbox
from tests.conftest import _truncate_all
from tests.factories import NO_QUIET_HOURS, make_env

APNS_DEVICE = "ab" * 32
FCM_DEVICE = "fcm-device-" + "c" * 140
EXPO_DEVICE = "ExponentPushToken[expo-device-0000000001]"


@pytest.fixture
def pipeline_env(
    database_url, redis_url, apns_standin, fcm_standin, expo_standin
) -> dict[str, str]:
    return make_env(
        database_url,
        redis_url,
        **apns_standin.client_env(),
        **fcm_standin.client_env(),
        **expo_standin.client_env(),
        RETRY_BASE_SECONDS="1",
        **NO_QUIET_HOURS,
        RATE_LIMIT_REGISTER_TOKEN="1000 per hour",
    )


class Pipeline:
    """The API client, a burst worker and the sweep, as a test drives them."""

    def __init__(self, app: Flask, runtime: worker_runtime.Runtime):
        self.app = app
        self.client = app.test_client()
        self.runtime = runtime
        self.settings = runtime.settings

    def header(self, user_id: str, role: Role = Role.USER) -> dict[str, str]:
        from api.auth import mint_token

        return {"Authorization": f"Bearer {mint_token(self.settings, user_id, role)}"}

    def register(self, user_id: str, token: str, platform: str) -> str:
        response = self.client.post(
            "/api/v1/notifications/register-token",
            json={"token": token, "platform": platform},
            headers=self.header(user_id),
        )
        assert response.status_code in (200, 201), response.json
        return response.json["data"]["token_id"]

    def send(self, role: Role = Role.SERVICE, **body: Any) -> Any:
        body.setdefault("notification_type", "new_match")
        return self.client.post(
            "/api/v1/notifications/send", json=body, headers=self.header("matching", role)
        )

    def work(self) -> None:
        """Run every queued job, critical first, until the queues are empty."""
        connection = self.runtime.redis
        make_worker(connection).work(burst=True)

    def sweep(self) -> dict[str, int]:
        return sweep_outbox()

    def notification(self, notification_id: str, user_id: str = "ops") -> dict[str, Any]:
        response = self.client.get(
            f"/api/v1/notifications/{notification_id}", headers=self.header(user_id, Role.ADMIN)
        )
        assert response.status_code == 200, response.json
        return response.json["data"]


@pytest.fixture
def make_pipeline(pipeline_env, redis_client) -> Iterator[Callable[..., Pipeline]]:
    def make(**overrides: str) -> Pipeline:
        settings = load_settings({**pipeline_env, **overrides})
        app = create_app(settings)
        return Pipeline(app, worker_runtime.configure(settings))

    yield make
    _truncate_all()
    worker_runtime.shutdown()


@pytest.fixture
def pipeline(make_pipeline) -> Pipeline:
    return make_pipeline()
