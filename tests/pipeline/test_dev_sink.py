"""Without push credentials (the `make run` default) every push goes to the development
sink, which records it (never the token or the body) so that the pipeline can be watched."""

from __future__ import annotations

import json

import runtime as worker_runtime
from api import create_app
from core import keys
from core.config import load_settings
from tests.conftest import _truncate_all
from tests.factories import NO_QUIET_HOURS, make_env
from tests.pipeline.conftest import APNS_DEVICE, EXPO_DEVICE, FCM_DEVICE, Pipeline


def test_without_credentials_pushes_go_to_the_sink_and_are_recorded(
    database_url, redis_url, redis_client
):
    settings = load_settings(
        make_env(database_url, redis_url, PULSE_ENV="development", **NO_QUIET_HOURS)
    )
    pipeline = Pipeline(create_app(settings), worker_runtime.configure(settings))
    try:
        for token, platform in (
            (APNS_DEVICE, "ios"),
            (FCM_DEVICE, "android"),
            (EXPO_DEVICE, "ios"),
        ):
            pipeline.register("alice", token, platform)
        response = pipeline.send(
            notification_type="new_message",
            target={"user_ids": ["alice"]},
            data={"sender_name": "Alex", "message_preview": "secret words"},
        )
        pipeline.work()

        detail = pipeline.notification(response.json["data"]["notification_ids"][0])
        recorded = [
            json.loads(raw)
            for raw in redis_client.lrange(
                keys.sink_pushes(settings.storage.redis_key_prefix), 0, -1
            )
        ]
        assert detail["status"] == "sent"
        assert sorted(push["provider"] for push in recorded) == ["apns", "expo", "fcm"]
        assert {push["title"] for push in recorded} == {"New message from Alex"}
        flat = json.dumps(recorded)
        assert "secret words" not in flat
        assert APNS_DEVICE not in flat and EXPO_DEVICE not in flat and FCM_DEVICE not in flat
    finally:
        worker_runtime.shutdown()
        _truncate_all()
