"""The delivery rules end to end: API -> worker -> stand-ins, with the real Redis counters
and batch windows. Windows and caps are configuration, so nothing here waits minutes."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from core.catalog import Role
from models import Match, User
from models.outbox import take_due
from tests.pipeline.conftest import APNS_DEVICE, EXPO_DEVICE

ROOT = Path(__file__).resolve().parents[2]


def detail(pipeline, response, index=0):
    return pipeline.notification(response.json["data"]["notification_ids"][index])


def rows(db_session, where="true"):
    db_session.expire_all()
    return (
        db_session.execute(
            text(f"SELECT * FROM notification_queue WHERE {where} ORDER BY created_at")
        )
        .mappings()
        .all()
    )


def make_due(db_session):
    db_session.execute(
        text("UPDATE notification_queue SET scheduled_for = now() WHERE status = 'scheduled'")
    )
    db_session.commit()


def put_settings(pipeline, user_id, body):
    response = pipeline.client.put(
        "/api/v1/notifications/settings", json=body, headers=pipeline.header(user_id)
    )
    assert response.status_code == 200, response.json


# 1. Settings -------------------------------------------------------------------------


def test_a_type_with_push_disabled_is_suppressed(pipeline, apns_standin):
    pipeline.register("alice", APNS_DEVICE, "ios")
    put_settings(
        pipeline, "alice", {"settings": [{"notification_type": "new_match", "push_enabled": False}]}
    )

    response = pipeline.send(target={"user_ids": ["alice"]})
    pipeline.work()

    found = detail(pipeline, response)
    assert (found["status"], found["reason"]) == ("suppressed", "setting_disabled")
    assert apns_standin.received == []


def test_marketing_is_suppressed_until_the_user_opts_in(pipeline, apns_standin):
    pipeline.register("alice", APNS_DEVICE, "ios")
    body = {"notification_type": "marketing", "title": "Sale", "body": "50% off Boosts"}

    before = pipeline.send(target={"user_ids": ["alice"]}, **body)
    pipeline.work()
    put_settings(
        pipeline,
        "alice",
        {
            "settings": [
                {"notification_type": "marketing", "is_enabled": True, "push_enabled": True}
            ]
        },
    )
    after = pipeline.send(target={"user_ids": ["alice"]}, **body)
    pipeline.work()

    assert detail(pipeline, before)["status"] == "suppressed"
    assert detail(pipeline, after)["status"] == "sent"
    assert len(apns_standin.received) == 1


# 2. Quiet hours ----------------------------------------------------------------------


def quiet_window_around_now(pipeline, user_id, zone="UTC"):
    now = datetime.now(UTC)
    start, end = (now - timedelta(hours=1)), (now + timedelta(hours=1))
    from zoneinfo import ZoneInfo

    local_start, local_end = start.astimezone(ZoneInfo(zone)), end.astimezone(ZoneInfo(zone))
    put_settings(
        pipeline,
        user_id,
        {
            "quiet_hours": {
                "start": local_start.strftime("%H:%M"),
                "end": local_end.strftime("%H:%M"),
                "timezone": zone,
            }
        },
    )
    return local_end.replace(second=0, microsecond=0).astimezone(UTC)


def test_a_push_inside_quiet_hours_is_deferred_to_the_window_end_then_sent(
    pipeline, apns_standin, db_session
):
    pipeline.register("alice", APNS_DEVICE, "ios")
    window_end = quiet_window_around_now(pipeline, "alice", "Asia/Kathmandu")

    response = pipeline.send(target={"user_ids": ["alice"]}, notification_type="like_received")
    pipeline.work()
    deferred = detail(pipeline, response)
    put_settings(pipeline, "alice", {"quiet_hours": {"start": "00:00", "end": "00:00"}})
    make_due(db_session)  # as if the window had ended
    pipeline.sweep()
    pipeline.work()

    scheduled_for = datetime.fromisoformat(deferred["scheduled_for"])
    assert (deferred["status"], deferred["reason"]) == ("scheduled", "quiet_hours")
    assert window_end <= scheduled_for < window_end + timedelta(minutes=15)
    assert deferred["attempts"] == 0  # a deferral is not a delivery attempt
    assert detail(pipeline, response)["status"] == "sent"
    assert len(apns_standin.received) == 1


def test_a_message_inside_quiet_hours_goes_now_quietly_unless_the_user_chose_defer(
    pipeline, apns_standin
):
    pipeline.register("alice", APNS_DEVICE, "ios")
    quiet_window_around_now(pipeline, "alice")

    quiet = pipeline.send(target={"user_ids": ["alice"]}, notification_type="new_message")
    pipeline.work()
    put_settings(
        pipeline,
        "alice",
        {"settings": [{"notification_type": "new_message", "quiet_hours_behavior": "defer"}]},
    )
    held = pipeline.send(
        target={"user_ids": ["alice"]},
        notification_type="new_message",
        data={"conversation_id": "another"},
    )
    pipeline.work()

    assert detail(pipeline, quiet)["status"] == "sent"
    [push] = apns_standin.received
    assert push.payload["aps"]["interruption-level"] == "passive"
    assert "sound" not in push.payload["aps"]
    assert (detail(pipeline, held)["status"], detail(pipeline, held)["reason"]) == (
        "scheduled",
        "quiet_hours",
    )


def test_critical_bypasses_quiet_hours(pipeline, apns_standin):
    pipeline.register("alice", APNS_DEVICE, "ios")
    quiet_window_around_now(pipeline, "alice")

    response = pipeline.send(
        target={"user_ids": ["alice"]},
        notification_type="system",
        priority="critical",
        title="Security alert",
        body="A new device signed in.",
    )
    pipeline.work()

    assert detail(pipeline, response)["status"] == "sent"
    assert apns_standin.received[0].headers["apns-priority"] == "10"


# 3. Frequency caps -------------------------------------------------------------------


def boost(pipeline, priority=None):
    """boost_activated: capped, never batched."""
    extra = {"priority": priority} if priority else {}
    return pipeline.send(
        target={"user_ids": ["alice"]}, notification_type="boost_activated", **extra
    )


def test_per_type_hourly_cap_defers_high_and_suppresses_low(make_pipeline, apns_standin):
    pipeline = make_pipeline(FREQUENCY_CAP_PER_TYPE_HOUR="3")
    pipeline.register("alice", APNS_DEVICE, "ios")

    high = [boost(pipeline, "high") for _ in range(5)]
    low = boost(pipeline, "low")
    pipeline.work()

    statuses = Counter((d["status"], d["reason"]) for d in (detail(pipeline, r) for r in high))
    next_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    deferred = [detail(pipeline, r) for r in high if detail(pipeline, r)["status"] == "scheduled"]
    assert statuses == {("sent", None): 3, ("scheduled", "frequency_cap"): 2}
    assert {datetime.fromisoformat(d["scheduled_for"]) for d in deferred} == {next_hour}
    # low over the cap is not worth sending later
    assert (detail(pipeline, low)["status"], detail(pipeline, low)["reason"]) == (
        "suppressed",
        "frequency_cap",
    )
    assert len(apns_standin.received) == 3


def test_messages_and_matches_are_never_capped(make_pipeline, apns_standin):
    pipeline = make_pipeline(FREQUENCY_CAP_PER_TYPE_HOUR="3", FREQUENCY_CAP_PER_DAY="3")
    pipeline.register("alice", APNS_DEVICE, "ios")

    capped = [boost(pipeline) for _ in range(4)]
    matches = [pipeline.send(target={"user_ids": ["alice"]}) for _ in range(5)]
    messages = [
        pipeline.send(
            target={"user_ids": ["alice"]},
            notification_type="new_message",
            data={"conversation_id": f"c-{i}", "sender_name": "Alex"},
        )
        for i in range(5)
    ]
    pipeline.work()

    assert [detail(pipeline, r)["status"] for r in capped].count("scheduled") == 1
    assert {detail(pipeline, r)["status"] for r in matches + messages} == {"sent"}
    assert len(apns_standin.received) == 3 + 5 + 5


def test_the_daily_cap_counts_every_type_and_critical_is_free(make_pipeline, apns_standin):
    pipeline = make_pipeline(FREQUENCY_CAP_PER_DAY="2")
    pipeline.register("alice", APNS_DEVICE, "ios")

    sent = [
        pipeline.send(target={"user_ids": ["alice"]}, notification_type=kind)
        for kind in ("like_received", "super_like_received", "boost_activated")
    ]
    critical = pipeline.send(
        target={"user_ids": ["alice"]},
        notification_type="system",
        priority="critical",
        title="Security",
        body="New sign-in",
    )
    pipeline.work()

    statuses = [detail(pipeline, r)["status"] for r in sent]
    assert statuses == ["sent", "sent", "scheduled"]
    assert detail(pipeline, critical)["status"] == "sent"


def test_a_push_that_reached_no_device_does_not_use_the_cap(make_pipeline, apns_standin):
    pipeline = make_pipeline(FREQUENCY_CAP_PER_TYPE_HOUR="1")
    pipeline.register("alice", APNS_DEVICE, "ios")
    apns_standin.respond(APNS_DEVICE, 400, "PayloadTooLarge", times=1)

    failed = boost(pipeline)
    pipeline.work()
    after = boost(pipeline)
    pipeline.work()

    assert detail(pipeline, failed)["status"] == "failed"
    assert detail(pipeline, after)["status"] == "sent"


def test_a_retry_after_a_partial_send_takes_no_second_cap(
    make_pipeline, apns_standin, expo_standin, db_session
):
    pipeline = make_pipeline(FREQUENCY_CAP_PER_TYPE_HOUR="1")
    pipeline.register("alice", APNS_DEVICE, "ios")
    pipeline.register("alice", EXPO_DEVICE, "ios")
    apns_standin.respond(APNS_DEVICE, 503, "ServiceUnavailable", times=1)

    retried = boost(pipeline)
    pipeline.work()
    make_due(db_session)
    pipeline.sweep()
    pipeline.work()
    over_the_cap = boost(pipeline)
    pipeline.work()

    found = detail(pipeline, retried)
    assert (found["status"], found["attempts"]) == ("sent", 2)
    assert len(apns_standin.received) == 2 and len(expo_standin.messages) == 1
    # The one push the hourly cap allows is the retried one, counted once.
    assert (detail(pipeline, over_the_cap)["status"], detail(pipeline, over_the_cap)["reason"]) == (
        "scheduled",
        "frequency_cap",
    )


# 4. Batching -------------------------------------------------------------------------


def message(pipeline, conversation="c-1", preview="hi"):
    return pipeline.send(
        notification_type="new_message",
        target={"user_ids": ["alice"]},
        data={"conversation_id": conversation, "sender_name": "Alex", "message_preview": preview},
    )


def test_similar_messages_in_a_window_become_one_summary(make_pipeline, apns_standin, db_session):
    pipeline = make_pipeline(
        NOTIFICATION_BATCH_WINDOW_SECONDS="60", FREQUENCY_CAP_PER_TYPE_HOUR="100"
    )
    pipeline.register("alice", APNS_DEVICE, "ios")

    first = message(pipeline)
    pipeline.work()
    later = [message(pipeline, preview=f"m{i}") for i in range(3)]
    other_conversation = message(pipeline, conversation="c-2")
    pipeline.work()
    held = [detail(pipeline, r) for r in later]
    make_due(db_session)
    pipeline.sweep()
    pipeline.work()

    assert detail(pipeline, first)["status"] == "sent"
    assert detail(pipeline, other_conversation)["status"] == "sent"
    summary = [d for d in held if d["reason"] == "batch_summary"]
    assert len(summary) == 1
    assert sorted(d["status"] for d in held) == ["batched", "batched", "scheduled"]
    alerts = [r.payload["aps"]["alert"]["title"] for r in apns_standin.received]
    assert alerts == [
        "New message from Alex",
        "New message from Alex",
        "3 new messages from Alex",
    ]
    collapse = {r.headers.get("apns-collapse-id") for r in apns_standin.received[::2]}
    assert collapse == {"new_message:alice:c-1"}
    merged = rows(db_session, "status = 'batched'")
    assert {str(r["batched_into_id"]) for r in merged} == {summary[0]["id"]}
    assert pipeline.notification(summary[0]["id"])["status"] == "sent"


def test_critical_is_never_batched(make_pipeline, apns_standin):
    pipeline = make_pipeline(NOTIFICATION_BATCH_WINDOW_SECONDS="60")
    pipeline.register("alice", APNS_DEVICE, "ios")

    for _ in range(2):
        pipeline.send(
            notification_type="new_message",
            priority="critical",
            target={"user_ids": ["alice"]},
            data={"conversation_id": "c-1", "sender_name": "Alex"},
        )
    pipeline.work()

    assert len(apns_standin.received) == 2


# 5. Two workers racing ----------------------------------------------------------------


def run_two_workers(pipeline_env, overrides):
    env = {**os.environ, **pipeline_env, **overrides}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "workers.run", "--burst"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.wait(timeout=120) == 0


def test_two_workers_racing_never_exceed_a_cap_nor_send_a_summary_twice(
    make_pipeline, pipeline_env, apns_standin, db_session
):
    overrides = {
        "NOTIFICATION_BATCH_SIZE": "1",
        "FREQUENCY_CAP_PER_TYPE_HOUR": "3",
        "NOTIFICATION_BATCH_WINDOW_SECONDS": "60",
    }
    pipeline = make_pipeline(**overrides)
    pipeline.register("alice", APNS_DEVICE, "ios")
    pipeline.register("bob", EXPO_DEVICE, "ios")
    for _ in range(12):
        boost(pipeline)
    for index in range(12):
        pipeline.client.post(
            "/api/v1/notifications/send",
            json={
                "notification_type": "new_message",
                "target": {"user_ids": ["bob"]},
                "data": {"conversation_id": "c-9", "sender_name": "Alex", "n": str(index)},
            },
            headers=pipeline.header("chat", Role.SERVICE),
        )

    run_two_workers(pipeline_env, overrides)
    make_due(db_session)  # as if the batch window had closed
    pipeline.sweep()
    run_two_workers(pipeline_env, overrides)

    alice = Counter(r["reason"] for r in rows(db_session, "user_id = 'alice'"))
    bob = Counter((r["status"], r["reason"]) for r in rows(db_session, "user_id = 'bob'"))
    assert len(apns_standin.received) == 3
    assert alice == {None: 3, "frequency_cap": 9}
    # bob: the first at once, eleven held; one of them carried the summary out
    assert bob[("sent", None)] == 1, bob
    assert bob[("sent", "batch_summary")] == 1
    assert bob[("batched", "batched")] == 10


# 6. Priority ------------------------------------------------------------------------


def test_the_sweep_takes_the_most_urgent_due_rows_first(pipeline, db_session):
    for priority in ("low", "normal", "critical", "high"):
        pipeline.send(
            target={"user_ids": ["alice"]},
            notification_type="system",
            title="x",
            body="y",
            priority=priority,
            scheduled_for=(datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        )
    make_due(db_session)

    now = datetime.now(UTC)
    order = []
    for _ in range(4):
        taken = take_due(db_session, now, now, limit=1)
        order += [p.value for p in taken]
    db_session.commit()

    assert order == ["critical", "high", "normal", "low"]


# 7. Personalization and content ------------------------------------------------------


def test_the_users_locale_picks_the_template(pipeline, apns_standin, db_session):
    pipeline.register("alice", APNS_DEVICE, "ios")
    db_session.get(User, "alice").device_locale = "es-MX"
    db_session.commit()

    pipeline.send(target={"user_ids": ["alice"]}, data={"match_name": "Ana"})
    pipeline.work()

    assert apns_standin.received[0].payload["aps"]["alert"] == {
        "title": "¡Es un Match! 💕",
        "body": "¡A ti y a Ana os gustáis!",
    }


def test_content_is_sanitized_and_the_largest_allowed_push_fits_4_kb(
    pipeline, apns_standin, fcm_standin
):
    from tests.pipeline.conftest import FCM_DEVICE

    pipeline.register("alice", APNS_DEVICE, "ios")
    pipeline.register("alice", FCM_DEVICE, "android")
    data = {f"k{i}": "é" * 100 for i in range(11)}  # just under the 2,500-byte data cap

    response = pipeline.send(
        target={"user_ids": ["alice"]},
        notification_type="system",
        title="<b>Hello</b>\x07 " + "ü" * 180,
        body="<script>alert(1)</script>Body\u202e" + "🙂" * 400,
        data=data,
    )
    pipeline.work()

    found = detail(pipeline, response)
    assert found["status"] == "sent", found
    assert found["title"].startswith("Hello ü") and "<b>" not in found["title"]
    assert len(found["title"].encode()) <= 200 and found["title"].endswith("…")
    assert "<script>" not in found["body"] and "\u202e" not in found["body"]
    assert len(found["body"].encode()) <= 800
    assert len(apns_standin.received) == 1 and len(fcm_standin.received) == 1


# 8. Expiry ---------------------------------------------------------------------------


def test_match_expiring_expires_with_its_match(pipeline, apns_standin, db_session):
    pipeline.register("alice", APNS_DEVICE, "ios")
    db_session.add_all([User(id="bob")])
    db_session.flush()
    match = Match(
        id=uuid.uuid4(),
        user_a_id="alice",
        user_b_id="bob",
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    db_session.add(match)
    db_session.commit()

    response = pipeline.send(
        notification_type="match_expiring",
        target={"user_ids": ["alice"]},
        data={"match_id": str(match.id), "match_name": "Bob"},
        scheduled_for=(datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
    )
    found = detail(pipeline, response)
    db_session.execute(
        text("UPDATE notification_queue SET scheduled_for = now(), expires_at = now()")
    )
    db_session.commit()
    pipeline.sweep()
    pipeline.work()

    assert datetime.fromisoformat(found["expires_at"]) == match.expires_at
    assert detail(pipeline, response)["status"] == "expired"
    assert apns_standin.received == []


def test_a_retried_message_is_sent_not_held_by_the_window_it_opened(
    make_pipeline, apns_standin, db_session
):
    pipeline = make_pipeline(
        NOTIFICATION_BATCH_WINDOW_SECONDS="60", FREQUENCY_CAP_PER_TYPE_HOUR="100"
    )
    pipeline.register("alice", APNS_DEVICE, "ios")
    apns_standin.respond(APNS_DEVICE, 503, "ServiceUnavailable", times=1)

    first = message(pipeline)
    pipeline.work()
    make_due(db_session)
    pipeline.sweep()
    pipeline.work()

    found = detail(pipeline, first)
    assert (found["status"], found["attempts"], found["reason"]) == ("sent", 2, None)
    assert [r.status for r in apns_standin.received] == [503, 200]
    assert rows(db_session, "status IN ('batched', 'scheduled')") == []
