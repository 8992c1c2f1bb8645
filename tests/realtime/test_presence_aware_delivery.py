"""Presence-aware delivery: a user active in the app gets the notification in-app and no
push; a user who is not gets the push (and the in-app copy if a socket is open)."""

from __future__ import annotations

import runtime as worker_runtime
from api import create_app
from api.auth import mint_token
from core.catalog import Role
from core.config import load_settings
from intake.queues import make_worker
from tests.conftest import _truncate_all
from tests.factories import NO_QUIET_HOURS
from tests.pipeline.conftest import APNS_DEVICE
from tests.realtime.conftest import realtime_env

OTHER_DEVICE = "cd" * 32


def test_an_active_user_gets_it_in_app_and_no_push(
    database_url, redis_url, gateway, clients, token, users, apns_standin
):
    alice, bob = users(2)
    env = realtime_env(database_url, redis_url, **apns_standin.client_env(), **NO_QUIET_HOURS)
    settings = load_settings(env)
    app = create_app(settings)
    runtime = worker_runtime.configure(settings)
    http = app.test_client()
    try:
        for user_id, device in ((alice, APNS_DEVICE), (bob, OTHER_DEVICE)):
            response = http.post(
                "/api/v1/notifications/register-token",
                json={"token": device, "platform": "ios"},
                headers={"Authorization": f"Bearer {mint_token(settings, user_id)}"},
            )
            assert response.status_code == 201
        socket = clients(gateway, token(alice))  # alice has the app open

        response = http.post(
            "/api/v1/notifications/send",
            json={
                "notification_type": "new_message",
                "target": {"user_ids": [alice, bob]},
                "data": {"sender_name": "Alex", "message_preview": "Hey!"},
            },
            headers={"Authorization": f"Bearer {mint_token(settings, 'chat', Role.SERVICE)}"},
        )
        ids = response.json["data"]["notification_ids"]
        make_worker(runtime.redis).work(burst=True)

        in_app = socket.wait_for("notification")
        admin = {"Authorization": f"Bearer {mint_token(settings, 'ops', Role.ADMIN)}"}
        states = [http.get(f"/api/v1/notifications/{i}", headers=admin).json["data"] for i in ids]
        assert in_app["title"] == "New message from Alex" and in_app["id"] == ids[0]
        assert (states[0]["status"], states[0]["reason"]) == ("suppressed", "user_active")
        assert states[1]["status"] == "sent"
        assert [r.token for r in apns_standin.received] == [OTHER_DEVICE]
    finally:
        worker_runtime.shutdown()
        _truncate_all()
