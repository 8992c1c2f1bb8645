"""Private previews end to end: a user who turned show_previews off gets message and match
pushes that say only "New message" / "New match" (in their language), whatever title and
body the sender gave, with ids only in the data, on every provider; batch summaries too."""

from __future__ import annotations

import json

from sqlalchemy import text

from tests.pipeline.conftest import APNS_DEVICE, EXPO_DEVICE, FCM_DEVICE

FREE_TEXT = ("Alex", "8pm", "tickets", "flirty")  # none of these may reach the wire


def three_devices(pipeline, user_id="alice"):
    pipeline.register(user_id, APNS_DEVICE, "ios")
    pipeline.register(user_id, FCM_DEVICE, "android")
    pipeline.register(user_id, EXPO_DEVICE, "ios")


def hide_previews(pipeline, user_id="alice"):
    response = pipeline.client.put(
        "/api/v1/notifications/settings",
        json={"privacy": {"show_previews": False}},
        headers=pipeline.header(user_id),
    )
    assert response.status_code == 200, response.json
    assert response.json["data"]["privacy"]["show_previews"] is False


def wire(apns_standin, fcm_standin, expo_standin):
    """(title, body, data) as each provider received it, and everything it received as text."""
    [apns] = apns_standin.received
    [fcm] = fcm_standin.received
    [expo] = expo_standin.messages
    apns_data = {k: v for k, v in apns.payload.items() if k not in ("aps", "body")}
    fcm_data = {k: v for k, v in fcm.message["data"].items() if k != "body"}
    shown = {
        "apns": (apns.payload["aps"]["alert"]["title"], apns.payload["aps"]["alert"]["body"]),
        "fcm": (fcm.message["notification"]["title"], fcm.message["notification"]["body"]),
        "expo": (expo["title"], expo["body"]),
    }
    data = {"apns": apns_data, "fcm": fcm_data, "expo": expo["data"]}
    copies = {"apns": apns.payload["body"], "fcm": json.loads(fcm.message["data"]["body"])}
    everything = json.dumps([apns.payload, fcm.message, expo], ensure_ascii=False)
    return shown, data, copies, everything


def test_a_message_says_only_new_message_and_carries_ids_only(
    pipeline, apns_standin, fcm_standin, expo_standin
):
    three_devices(pipeline)
    hide_previews(pipeline)

    response = pipeline.send(
        notification_type="new_message",
        title="Alex: 8pm?",
        body="Bring the tickets",
        target={"user_ids": ["alice"]},
        data={
            "conversation_id": "c-7",
            "sender_id": "u-alex",
            "sender_name": "Alex",
            "message_preview": "8pm?",
            "mood": "flirty",
        },
    )
    pipeline.work()

    [notification_id] = response.json["data"]["notification_ids"]
    shown, data, copies, everything = wire(apns_standin, fcm_standin, expo_standin)
    assert set(shown.values()) == {("New message", "You have a new message.")}
    ids = {
        "conversation_id": "c-7",
        "sender_id": "u-alex",
        "action": "open_conversation",
        "notification_id": notification_id,
        "type": "new_message",
    }
    assert data == {"apns": ids, "fcm": ids, "expo": ids}
    assert copies == {"apns": ids, "fcm": ids}
    assert not [word for word in FREE_TEXT if word in everything]
    assert apns_standin.received[0].payload["aps"]["thread-id"] == "c-7"  # an id: kept
    # What the sender wrote is kept for the in-app copy and the API, never pushed.
    assert pipeline.notification(notification_id)["title"] == "Alex: 8pm?"


def test_a_match_says_only_new_match_in_the_users_language(
    pipeline, apns_standin, fcm_standin, expo_standin, db_session
):
    three_devices(pipeline)
    hide_previews(pipeline)
    db_session.execute(text("UPDATE users SET device_locale = 'es-MX' WHERE id = 'alice'"))
    db_session.commit()

    pipeline.send(target={"user_ids": ["alice"]}, data={"match_id": "m-1", "match_name": "Alex"})
    pipeline.work()

    shown, data, _, everything = wire(apns_standin, fcm_standin, expo_standin)
    assert set(shown.values()) == {("Nuevo match", "¡Tienes un match nuevo!")}
    assert {tuple(sorted(d)) for d in data.values()} == {
        ("action", "match_id", "notification_id", "type")
    }
    assert "Alex" not in everything


def test_show_previews_off_set_in_the_database_is_honoured_too(pipeline, apns_standin, db_session):
    pipeline.register("alice", APNS_DEVICE, "ios")
    db_session.execute(text("UPDATE users SET show_previews = false WHERE id = 'alice'"))
    db_session.commit()

    pipeline.send(
        notification_type="conversation_started",
        target={"user_ids": ["alice"]},
        data={"conversation_id": "c-1", "sender_name": "Alex"},
    )
    pipeline.work()

    payload = apns_standin.received[0].payload
    assert payload["aps"]["alert"] == {"title": "New message", "body": "You have a new message."}
    assert "sender_name" not in payload and "sender_name" not in payload["body"]


def test_with_previews_on_and_for_other_types_the_push_is_unchanged(pipeline, apns_standin):
    pipeline.register("alice", APNS_DEVICE, "ios")
    pipeline.register("bob", "cd" * 32, "ios")
    hide_previews(pipeline, "bob")

    pipeline.send(
        notification_type="new_message",
        target={"user_ids": ["alice"]},
        data={"conversation_id": "c-1", "sender_name": "Alex", "message_preview": "Hi!"},
    )
    pipeline.send(
        notification_type="super_like_received",
        target={"user_ids": ["bob"]},
        data={"user_id": "u-alex", "note": "kept"},
    )
    pipeline.work()

    by_token = {r.token: r.payload for r in apns_standin.received}
    alice, bob = by_token[APNS_DEVICE], by_token["cd" * 32]
    assert alice["aps"]["alert"] == {"title": "New message from Alex", "body": "Hi!"}
    assert alice["sender_name"] == "Alex"
    assert bob["aps"]["alert"]["title"] == "You received a Super Like! ⭐"
    assert bob["note"] == "kept"


def test_a_batch_summary_says_only_how_many(make_pipeline, apns_standin, db_session):
    pipeline = make_pipeline(NOTIFICATION_BATCH_WINDOW_SECONDS="60")
    pipeline.register("alice", APNS_DEVICE, "ios")
    hide_previews(pipeline)

    def message(preview):
        return pipeline.send(
            notification_type="new_message",
            target={"user_ids": ["alice"]},
            data={"conversation_id": "c-1", "sender_name": "Alex", "message_preview": preview},
        )

    message("first")
    pipeline.work()
    for index in range(3):
        message(f"later {index}")
    pipeline.work()
    db_session.execute(
        text("UPDATE notification_queue SET scheduled_for = now() WHERE status = 'scheduled'")
    )
    db_session.commit()
    pipeline.sweep()
    pipeline.work()

    alerts = [r.payload["aps"]["alert"] for r in apns_standin.received]
    assert alerts == [
        {"title": "New message", "body": "You have a new message."},
        {"title": "New messages", "body": "You have 3 new messages."},
    ]
    summary = apns_standin.received[1].payload
    assert summary["batch_count"] == 3 and "sender_name" not in summary
    assert apns_standin.received[1].headers["apns-collapse-id"] == "new_message:alice:c-1"
