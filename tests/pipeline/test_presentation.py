"""How each push presents itself, as the bytes each stand-in received: the Android channel
and iOS interruption level of its type, the conversation's thread, the screen a tap opens
(`data.action`), where the data sits for native and Expo apps, and quiet delivery in quiet
hours (no sound, no vibration, not lighting the screen)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.pipeline.conftest import APNS_DEVICE, EXPO_DEVICE, FCM_DEVICE


def three_devices(pipeline, user_id="alice"):
    pipeline.register(user_id, APNS_DEVICE, "ios")
    pipeline.register(user_id, FCM_DEVICE, "android")
    pipeline.register(user_id, EXPO_DEVICE, "ios")


def sent_ids(response):
    assert response.status_code == 202, response.json
    return response.json["data"]["notification_ids"]


def the_one(received):
    assert len(received) == 1, received
    return received[0]


def put_settings(pipeline, user_id, body):
    response = pipeline.client.put(
        "/api/v1/notifications/settings", json=body, headers=pipeline.header(user_id)
    )
    assert response.status_code == 200, response.json


def test_a_message_goes_on_its_channel_level_and_thread_with_the_data_where_apps_read_it(
    pipeline, apns_standin, fcm_standin, expo_standin
):
    three_devices(pipeline)

    response = pipeline.send(
        notification_type="new_message",
        target={"user_ids": ["alice"]},
        data={"conversation_id": "c-7", "sender_name": "Alex", "message_preview": "Hi!"},
    )
    pipeline.work()

    [notification_id] = sent_ids(response)
    data = {
        "conversation_id": "c-7",
        "sender_name": "Alex",
        "message_preview": "Hi!",
        "action": "open_conversation",
        "notification_id": notification_id,
        "type": "new_message",
    }
    apns = the_one(apns_standin.received)
    assert apns.headers["apns-priority"] == "10"
    assert apns.payload["aps"] == {
        "alert": {"title": "New message from Alex", "body": "Hi!"},
        "sound": "default",
        "thread-id": "c-7",
        "interruption-level": "active",
    }
    # Native apps read the keys beside aps; expo-notifications reads the object `body`.
    assert {k: v for k, v in apns.payload.items() if k not in ("aps", "body")} == data
    assert apns.payload["body"] == data

    fcm = the_one(fcm_standin.received).message
    assert fcm["notification"] == {"title": "New message from Alex", "body": "Hi!"}
    assert fcm["android"]["priority"] == "high"
    assert fcm["android"]["notification"] == {
        "channel_id": "messages",
        "tag": "c-7",
        "sound": "default",
    }
    # Native apps read the data keys; expo-notifications parses the JSON string `body`.
    assert {k: v for k, v in fcm["data"].items() if k != "body"} == data
    assert json.loads(fcm["data"]["body"]) == data

    expo = the_one(expo_standin.messages)
    assert (expo["channelId"], expo["interruptionLevel"]) == ("messages", "active")
    assert (expo["sound"], expo["priority"]) == ("default", "high")
    assert expo["data"] == data  # Expo's own service puts it where its SDK reads it


@pytest.mark.parametrize(
    ("kind", "data", "channel", "level", "action"),
    [
        ("new_match", {"match_id": "m-1"}, "matches", "time-sensitive", "open_match"),
        ("super_like_received", {"user_id": "u-2"}, "likes", "active", "open_super_likes"),
        ("like_received", {"user_id": "u-2"}, "likes", "active", "open_likes"),
        ("match_expiring", {"match_id": "m-1"}, "matches", "active", "open_match"),
        ("conversation_started", {"match_id": "m"}, "messages", "active", "open_conversation"),
        ("boost_activated", {"minutes": 30}, "activity", "active", "open_boost"),
        ("profile_view", {"viewer_id": "u-3"}, "activity", "active", "open_profile_views"),
    ],
)  # fmt: skip
def test_each_type_goes_on_its_own_channel_and_level_and_opens_its_screen(
    pipeline, apns_standin, fcm_standin, expo_standin, kind, data, channel, level, action
):
    three_devices(pipeline)

    response = pipeline.send(notification_type=kind, target={"user_ids": ["alice"]}, data=data)
    pipeline.work()

    [notification_id] = sent_ids(response)
    apns = the_one(apns_standin.received).payload
    fcm = the_one(fcm_standin.received).message
    expo = the_one(expo_standin.messages)
    assert apns["aps"]["interruption-level"] == level
    assert fcm["android"]["notification"]["channel_id"] == channel
    assert (expo["channelId"], expo["interruptionLevel"]) == (channel, level)
    assert apns["action"] == fcm["data"]["action"] == expo["data"]["action"] == action
    # Filled in when the send was accepted: the stored notification shows it too.
    assert pipeline.notification(notification_id)["data"] == {**data, "action": action}


def test_the_senders_action_is_kept(pipeline, apns_standin):
    pipeline.register("alice", APNS_DEVICE, "ios")

    pipeline.send(
        notification_type="new_match",
        target={"user_ids": ["alice"]},
        data={"match_id": "m-1", "action": "open_conversation"},
    )
    pipeline.work()

    assert the_one(apns_standin.received).payload["action"] == "open_conversation"


# Quiet hours --------------------------------------------------------------------------


def quiet_hours_around_now(pipeline, user_id):
    now = datetime.now(UTC)
    put_settings(
        pipeline,
        user_id,
        {
            "quiet_hours": {
                "start": (now - timedelta(hours=1)).strftime("%H:%M"),
                "end": (now + timedelta(hours=1)).strftime("%H:%M"),
                "timezone": "UTC",
            }
        },
    )


def test_in_quiet_hours_a_message_goes_quietly_and_a_like_waits_for_the_morning(
    pipeline, apns_standin, fcm_standin, expo_standin
):
    three_devices(pipeline)
    quiet_hours_around_now(pipeline, "alice")

    message = pipeline.send(
        notification_type="new_message",
        target={"user_ids": ["alice"]},
        data={"conversation_id": "c-7", "sender_name": "Alex"},
    )
    like = pipeline.send(notification_type="like_received", target={"user_ids": ["alice"]})
    pipeline.work()

    [message_id], [like_id] = sent_ids(message), sent_ids(like)
    assert pipeline.notification(message_id)["status"] == "sent"
    waiting = pipeline.notification(like_id)
    assert (waiting["status"], waiting["reason"]) == ("scheduled", "quiet_hours")

    apns = the_one(apns_standin.received)
    assert apns.headers["apns-priority"] == "5"  # does not wake the device
    assert apns.payload["aps"] == {
        "alert": {"title": "New message from Alex", "body": "Open the app to read it."},
        "thread-id": "c-7",
        "interruption-level": "passive",  # no sound, does not light the screen
    }
    assert apns.payload["type"] == "new_message"

    fcm = the_one(fcm_standin.received).message
    assert fcm["android"]["priority"] == "normal"
    assert fcm["android"]["notification"] == {
        "channel_id": "quiet",
        "tag": "c-7",
        "default_sound": False,
        "default_vibrate_timings": False,
        "default_light_settings": False,
        "notification_priority": "PRIORITY_LOW",
    }

    expo = the_one(expo_standin.messages)
    assert (expo["channelId"], expo["interruptionLevel"], expo["priority"]) == (
        "quiet",
        "passive",
        "normal",
    )
    assert "sound" not in expo


def test_a_new_match_in_quiet_hours_is_passive_not_time_sensitive(pipeline, apns_standin):
    pipeline.register("alice", APNS_DEVICE, "ios")
    quiet_hours_around_now(pipeline, "alice")

    pipeline.send(target={"user_ids": ["alice"]}, data={"match_id": "m-1"})
    pipeline.work()

    aps = the_one(apns_standin.received).payload["aps"]
    assert aps["interruption-level"] == "passive" and "sound" not in aps


# The 4 KB budget and the reserved key -----------------------------------------------


def test_when_the_copy_would_not_fit_4_kb_it_keeps_the_ids_and_the_push_still_goes(
    pipeline, apns_standin, fcm_standin
):
    pipeline.register("alice", APNS_DEVICE, "ios")
    pipeline.register("alice", FCM_DEVICE, "android")
    data = {"ticket_id": "t-1", "note": "é" * 1150}  # 2.3 KB of JSON, under the 2.5 KB cap

    response = pipeline.send(
        notification_type="system",
        title="ü" * 100,
        body="🙂" * 200,
        target={"user_ids": ["alice"]},
        data=data,
    )
    pipeline.work()

    [notification_id] = sent_ids(response)
    ids = {"ticket_id": "t-1", "action": "open_app", "notification_id": notification_id}
    ids["type"] = "system"
    assert pipeline.notification(notification_id)["status"] == "sent"
    apns = the_one(apns_standin.received).payload
    assert apns["note"] == data["note"] and apns["body"] == ids
    assert len(json.dumps(apns, ensure_ascii=False).encode()) <= 4096
    fcm = the_one(fcm_standin.received).message["data"]
    assert fcm["note"] == data["note"] and json.loads(fcm["body"]) == ids


def test_a_data_key_named_body_is_refused_at_the_door_and_nothing_is_sent(
    pipeline, apns_standin, fcm_standin, expo_standin
):
    three_devices(pipeline)

    response = pipeline.send(target={"user_ids": ["alice"]}, data={"body": "mine"})
    pipeline.work()

    assert response.status_code == 422
    assert "data" in response.json["error"]["details"]["fields"]
    assert apns_standin.received == fcm_standin.received == expo_standin.messages == []
