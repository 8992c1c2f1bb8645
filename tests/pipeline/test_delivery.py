"""End to end: the send API -> the outbox -> a real RQ worker -> the real aioapns, pyfcm
and Expo HTTP clients -> the stand-ins, and back to what the API reports."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from core.catalog import Role
from intake.client import notify
from models import NotificationSend, PushToken
from tests.pipeline.conftest import APNS_DEVICE, EXPO_DEVICE, FCM_DEVICE


def register_three_devices(pipeline, user_id="alice"):
    return {
        "apns": pipeline.register(user_id, APNS_DEVICE, "ios"),
        "fcm": pipeline.register(user_id, FCM_DEVICE, "android"),
        "expo": pipeline.register(user_id, EXPO_DEVICE, "ios"),
    }


def tokens(db_session):
    db_session.expire_all()
    return {t.provider: t for t in db_session.scalars(select(PushToken))}


def test_a_notification_reaches_every_device_on_all_three_providers(
    pipeline, apns_standin, fcm_standin, expo_standin
):
    register_three_devices(pipeline)

    response = pipeline.send(
        target={"user_ids": ["alice"]}, data={"match_name": "Sarah", "match_id": "m-1"}
    )
    pipeline.work()

    assert response.status_code == 202
    [notification_id] = response.json["data"]["notification_ids"]
    [apns] = apns_standin.received
    assert apns.headers["apns-push-type"] == "alert"
    assert apns.headers["apns-priority"] == "10"
    assert apns.payload["aps"]["alert"] == {
        "title": "It's a Match! 💕",
        "body": "You and Sarah both liked each other!",
    }
    [fcm] = fcm_standin.received
    assert fcm.message["android"]["priority"] == "high"
    assert fcm.message["data"]["match_id"] == "m-1"
    [expo] = expo_standin.messages
    assert expo["to"] == EXPO_DEVICE and expo["title"] == "It's a Match! 💕"
    detail = pipeline.notification(notification_id)
    assert detail["status"] == "sent" and detail["attempts"] == 1
    assert sorted(d["provider"] for d in detail["deliveries"]) == ["apns", "expo", "fcm"]
    assert {d["status"] for d in detail["deliveries"]} == {"sent"}
    assert all(d["provider_message_id"] for d in detail["deliveries"])


def test_normal_priority_goes_out_with_apns_priority_5_and_the_platform_filter(
    pipeline, apns_standin, fcm_standin, expo_standin
):
    register_three_devices(pipeline)

    pipeline.send(
        notification_type="like_received",
        target={"user_ids": ["alice"], "platforms": ["ios"]},
    )
    pipeline.work()

    assert [r.headers["apns-priority"] for r in apns_standin.received] == ["5"]
    assert fcm_standin.received == []
    assert len(expo_standin.messages) == 1


def test_a_user_with_no_device_is_suppressed_with_the_reason(pipeline):
    response = pipeline.send(target={"user_ids": ["nobody-yet"]})
    pipeline.work()

    detail = pipeline.notification(response.json["data"]["notification_ids"][0])
    assert (detail["status"], detail["reason"]) == ("suppressed", "no_active_token")


def test_dead_tokens_are_deactivated_at_once_and_never_retried(
    pipeline, apns_standin, fcm_standin, expo_standin, db_session
):
    register_three_devices(pipeline)
    apns_standin.respond(APNS_DEVICE, 410, "Unregistered", timestamp_ms=int(time.time() * 1000))
    fcm_standin.respond(FCM_DEVICE, "UNREGISTERED")
    expo_standin.ticket_error(EXPO_DEVICE, "DeviceNotRegistered")

    response = pipeline.send(target={"user_ids": ["alice"]})
    pipeline.work()
    pipeline.sweep()
    pipeline.work()

    detail = pipeline.notification(response.json["data"]["notification_ids"][0])
    assert detail["status"] == "failed"
    assert {d["error_reason"] for d in detail["deliveries"]} == {
        "Unregistered",
        "UNREGISTERED",
        "DeviceNotRegistered",
    }
    assert len(apns_standin.received) == len(fcm_standin.received) == 1
    states = {p: (t.is_active, t.deactivation_reason) for p, t in tokens(db_session).items()}
    assert states == {
        "apns": (False, "apns:Unregistered"),
        "fcm": (False, "fcm:UNREGISTERED"),
        "expo": (False, "expo:DeviceNotRegistered"),
    }


def test_an_apns_410_older_than_a_re_registration_leaves_the_token_active(
    pipeline, apns_standin, db_session
):
    pipeline.register("alice", APNS_DEVICE, "ios")
    an_hour_ago = int((time.time() - 3600) * 1000)
    apns_standin.respond(APNS_DEVICE, 410, "Unregistered", timestamp_ms=an_hour_ago)

    pipeline.send(target={"user_ids": ["alice"]})
    pipeline.work()

    assert tokens(db_session)["apns"].is_active is True


def test_a_bad_device_token_records_the_environment_mismatch(pipeline, apns_standin, db_session):
    pipeline.register("alice", APNS_DEVICE, "ios")
    apns_standin.respond(APNS_DEVICE, 400, "BadDeviceToken")

    pipeline.send(target={"user_ids": ["alice"]})
    pipeline.work()

    token = tokens(db_session)["apns"]
    assert token.is_active is False
    assert token.deactivation_reason == "apns:BadDeviceToken:environment_mismatch"


def test_a_credentials_error_keeps_the_token_and_raises_an_alarm(
    pipeline, apns_standin, db_session, redis_client
):
    pipeline.register("alice", APNS_DEVICE, "ios")
    apns_standin.respond(APNS_DEVICE, 403, "InvalidProviderToken")

    response = pipeline.send(target={"user_ids": ["alice"]})
    pipeline.work()

    assert tokens(db_session)["apns"].is_active is True
    alarms = redis_client.hgetall(f"{pipeline.settings.storage.redis_key_prefix}alarms:providers")
    assert b"InvalidProviderToken" in alarms[b"apns"]
    detail = pipeline.notification(response.json["data"]["notification_ids"][0])
    assert detail["status"] == "scheduled" and detail["last_error"] == "InvalidProviderToken"


def make_due_now(db_session):
    db_session.execute(
        text("UPDATE notification_queue SET scheduled_for = now() WHERE status = 'scheduled'")
    )
    db_session.commit()


def test_a_transient_error_is_retried_later_only_for_the_failed_device(
    pipeline, apns_standin, fcm_standin, expo_standin, db_session
):
    register_three_devices(pipeline)
    apns_standin.respond(APNS_DEVICE, 503, "ServiceUnavailable", times=1)

    response = pipeline.send(target={"user_ids": ["alice"]})
    before_the_attempt = datetime.now(UTC)
    pipeline.work()
    notification_id = response.json["data"]["notification_ids"][0]
    first = pipeline.notification(notification_id)
    make_due_now(db_session)
    pipeline.sweep()
    pipeline.work()
    second = pipeline.notification(notification_id)

    assert first["status"] == "scheduled"
    # At least a second of backoff after the attempt (however long the attempt took).
    retry_at = datetime.fromisoformat(first["scheduled_for"])
    assert retry_at >= before_the_attempt + timedelta(seconds=1)
    assert second["status"] == "sent" and second["attempts"] == 2
    assert len(apns_standin.received) == 2
    assert len(fcm_standin.received) == 1 and len(expo_standin.messages) == 1
    assert sorted(d["status"] for d in second["deliveries"]) == ["retrying", "sent", "sent", "sent"]


def test_retries_stop_after_the_cap_and_keep_the_last_error(
    make_pipeline, apns_standin, db_session
):
    pipeline = make_pipeline(DELIVERY_MAX_ATTEMPTS="2")
    pipeline.register("alice", APNS_DEVICE, "ios")
    apns_standin.respond(APNS_DEVICE, 500, "InternalServerError")

    response = pipeline.send(target={"user_ids": ["alice"]})
    for _ in range(3):
        pipeline.work()
        make_due_now(db_session)
        pipeline.sweep()
    pipeline.work()

    detail = pipeline.notification(response.json["data"]["notification_ids"][0])
    assert (detail["status"], detail["attempts"]) == ("failed", 2)
    assert detail["last_error"] == "InternalServerError"
    assert len(apns_standin.received) == 2


def test_retry_after_is_honoured(pipeline, fcm_standin):
    pipeline.register("alice", FCM_DEVICE, "android")
    fcm_standin.respond(FCM_DEVICE, "UNAVAILABLE", retry_after="120", times=1)

    response = pipeline.send(target={"user_ids": ["alice"]})
    pipeline.work()

    detail = pipeline.notification(response.json["data"]["notification_ids"][0])
    wait = datetime.fromisoformat(detail["scheduled_for"]) - datetime.now(UTC)
    assert detail["status"] == "scheduled"
    assert timedelta(seconds=100) < wait <= timedelta(seconds=121)


def test_an_expired_notification_is_never_sent(pipeline, apns_standin, db_session):
    pipeline.register("alice", APNS_DEVICE, "ios")
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    response = pipeline.send(target={"user_ids": ["alice"]}, expires_at=soon)
    db_session.execute(text("UPDATE notification_queue SET expires_at = now() - interval '1 s'"))
    db_session.commit()

    pipeline.work()

    detail = pipeline.notification(response.json["data"]["notification_ids"][0])
    assert detail["status"] == "expired"
    assert apns_standin.received == []


def test_a_scheduled_notification_waits_for_its_time(pipeline, expo_standin, db_session):
    pipeline.register("alice", EXPO_DEVICE, "android")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    response = pipeline.send(target={"user_ids": ["alice"]}, scheduled_for=later)
    pipeline.work()
    pipeline.sweep()
    pipeline.work()
    before = pipeline.notification(response.json["data"]["notification_ids"][0])
    make_due_now(db_session)
    pipeline.sweep()
    pipeline.work()

    assert before["status"] == "scheduled"
    assert len(expo_standin.messages) == 1


def test_the_same_idempotency_key_returns_the_first_answer_and_creates_nothing(
    pipeline, expo_standin, db_session
):
    pipeline.register("alice", EXPO_DEVICE, "ios")
    body = {"target": {"user_ids": ["alice"]}, "idempotency_key": "match-m-1"}

    first = pipeline.send(**body)
    again = pipeline.send(**body)
    different = pipeline.send(target={"user_ids": ["bob"]}, idempotency_key="match-m-1")
    pipeline.work()

    assert first.status_code == again.status_code == 202
    assert again.json == first.json
    assert different.status_code == 409
    assert db_session.query(NotificationSend).count() == 1
    assert len(expo_standin.messages) == 1


def test_only_admin_and_service_may_send(pipeline):
    response = pipeline.send(role=Role.USER, target={"user_ids": ["alice"]})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"target": {}}, "target"),
        ({"target": {"user_ids": ["a"], "all_users": True}}, "target"),
        ({"target": {"user_ids": []}}, "target"),
        ({"target": {"user_ids": ["a"] * 10_001}}, "target"),
        ({"target": {"user_ids": ["a"]}, "priority": "urgent"}, "priority"),
        ({"target": {"user_ids": ["a"]}, "notification_type": "nope"}, "notification_type"),
        ({"target": {"user_ids": ["a"]}, "notification_type": "system"}, "title"),
        ({"target": {"user_ids": ["a"]}, "expires_at": "2020-01-01T00:00:00+00:00"}, "expires_at"),
        ({"target": {"user_ids": ["a"]}, "scheduled_for": "2030-01-01T00:00:00"}, "scheduled_for"),
        ({"target": {"user_ids": ["a"]}, "data": {"x": "y" * 4000}}, "data"),
        ({"target": {"user_ids": ["a"]}, "data": {"body": "where expo apps read data"}}, "data"),
        ({"target": {"user_ids": ["a"]}, "data": {"aps": "the APNs dictionary"}}, "data"),
        ({"target": {"user_ids": ["a"], "platforms": ["pager"]}}, "target"),
    ],
)
def test_a_bad_send_is_422_naming_the_field_and_creates_nothing(pipeline, db_session, body, field):
    response = pipeline.send(**body)

    assert response.status_code == 422, response.json
    assert field in response.json["error"]["details"]["fields"]
    assert db_session.query(NotificationSend).count() == 0


def test_a_user_reads_only_their_own_notifications(pipeline):
    response = pipeline.send(target={"user_ids": ["alice"]})
    notification_id = response.json["data"]["notification_ids"][0]

    mine = pipeline.client.get(
        f"/api/v1/notifications/{notification_id}", headers=pipeline.header("alice")
    )
    theirs = pipeline.client.get(
        f"/api/v1/notifications/{notification_id}", headers=pipeline.header("bob")
    )

    assert mine.status_code == 200 and mine.json["data"]["user_id"] == "alice"
    assert theirs.status_code == 404


def test_the_inbox_pages_newest_first(pipeline):
    for index in range(5):
        pipeline.send(
            notification_type="new_message",
            target={"user_ids": ["alice"]},
            data={"sender_name": f"S{index}"},
        )
    headers = pipeline.header("alice")

    first = pipeline.client.get("/api/v1/notifications?limit=3", headers=headers).json["data"]
    cursor = first["next_cursor"]
    second = pipeline.client.get(
        f"/api/v1/notifications?limit=3&cursor={cursor}", headers=headers
    ).json["data"]
    bad = pipeline.client.get("/api/v1/notifications?cursor=garbage", headers=headers)

    titles = [item["title"] for item in first["items"] + second["items"]]
    assert titles == [f"New message from S{i}" for i in (4, 3, 2, 1, 0)]
    assert second["next_cursor"] is None
    assert bad.status_code == 422


def test_an_all_users_send_fans_out_to_every_user(pipeline, expo_standin):
    for index in range(3):
        pipeline.register(f"user-{index}", f"ExponentPushToken[all-users-device-{index}]", "ios")

    response = pipeline.send(notification_type="boost_activated", target={"all_users": True})
    pipeline.work()

    assert response.status_code == 202
    assert response.json["data"]["count"] == 3 and response.json["data"]["status"] == "fanning_out"
    assert sorted(m["to"] for m in expo_standin.messages) == [
        f"ExponentPushToken[all-users-device-{i}]" for i in range(3)
    ]


def test_notify_is_the_same_send_for_backend_services(pipeline, expo_standin, db_session):
    pipeline.register("alice", EXPO_DEVICE, "ios")

    answer = notify(
        "new_message",
        ["alice"],
        data={"sender_name": "Alex", "message_preview": "Hey! How was your hiking trip?"},
        requested_by="chat-service",
    )
    pipeline.work()

    assert answer["count"] == 1
    [message] = expo_standin.messages
    assert (message["title"], message["body"]) == (
        "New message from Alex",
        "Hey! How was your hiking trip?",
    )


def test_notify_validates_like_the_api(pipeline):
    from marshmallow import ValidationError

    with pytest.raises(ValidationError) as raised:
        notify("new_match", [], requested_by="matching")
    assert "target" in raised.value.messages


def test_a_nul_in_the_data_is_refused_before_it_reaches_postgres(pipeline, db_session):
    response = pipeline.send(target={"user_ids": ["alice"]}, data={"nested": {"x": "a\x00b"}})

    assert response.status_code == 422
    assert "data.nested.x" in response.json["error"]["details"]["fields"]
    assert db_session.query(NotificationSend).count() == 0


def test_times_with_any_offset_are_stored_in_utc(pipeline, db_session):
    response = pipeline.send(
        target={"user_ids": ["alice"]}, scheduled_for="2174-02-05T03:20:44+20:36"
    )
    far = pipeline.send(target={"user_ids": ["alice"]}, scheduled_for="9999-12-31T23:00:00-12:00")

    assert response.status_code == 202
    detail = pipeline.notification(response.json["data"]["notification_ids"][0])
    assert detail["scheduled_for"] == "2174-02-04T06:44:44+00:00"
    assert far.status_code == 422
