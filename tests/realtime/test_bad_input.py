"""Bad input on the socket gets an `error` event on that connection: unknown events, wrong
payloads, floods. Nothing crashes, and other users' connections are untouched."""

from __future__ import annotations

import pytest

from tests.waiting import wait_until


def test_an_unknown_event_is_answered_and_the_connection_lives_on(gateway, clients, token, users):
    (alice,) = users(1)
    me = clients(gateway, token(alice))
    me.emit("launch_rockets", {"count": 3})
    error = me.wait_for("error")
    assert error["code"] == "unknown_event"
    assert error["event"] == "launch_rockets"
    assert "presence_subscribe" in error["details"]["known_events"]
    assert me.call("heartbeat", {})["ok"] is True


@pytest.mark.parametrize(
    ("event", "payload", "field"),
    [
        ("typing_start", "conv-1", None),
        ("typing_start", {}, "conversation_id"),
        ("typing_start", {"conversation_id": 5}, "conversation_id"),
        (
            "typing_progress",
            {"conversation_id": "c", "char_count": "many", "duration_ms": 1},
            "char_count",
        ),
        ("presence_subscribe", {"user_ids": [f"u{i}" for i in range(501)]}, "user_ids"),
        ("presence_subscribe", {"user_ids": "everyone"}, "user_ids"),
        ("presence_update", {"status": "invisible"}, "status"),
        ("presence_update", [1, 2, 3], None),
        ("activity", {"activity_type": "hacking"}, "activity_type"),
        ("heartbeat", {"low_battery": "yes"}, "low_battery"),
    ],
)
def test_a_wrong_payload_gets_an_invalid_payload_error(
    gateway, clients, token, users, event, payload, field
):
    (alice,) = users(1)
    me = clients(gateway, token(alice))
    answer = me.call(event, payload)
    assert answer["ok"] is False
    assert answer["error"]["code"] == "invalid_payload"
    error = me.wait_for("error")
    assert error["event"] == event
    if field is not None:
        assert field in error["details"]["fields"]
    assert me.sio.connected


def test_a_flood_is_rate_limited_without_touching_anyone_else(
    gateway, clients, token, users, match
):
    alice, bob, carol = users(3)
    conversation = match(bob, carol)
    flooder = clients(gateway, token(alice))
    bob_client = clients(gateway, token(bob))
    carol_client = clients(gateway, token(carol))
    for _ in range(300):
        flooder.emit("heartbeat", {})
    error = flooder.wait_for("error", lambda e: e["code"] == "rate_limited")
    assert error["details"]["retry_after_ms"] > 0
    # The gateway handles a connection's events in order: its answer to a later call comes
    # after every notice the flood earned (a notice for this call itself names its event).
    seen = flooder.barrier("presence_unsubscribe", {"user_ids": []})
    # One notice per second, not one per dropped event.
    assert 1 <= len(flooder.received("error", lambda e: e["event"] == "heartbeat", seen)) <= 2
    assert flooder.sio.connected
    bob_client.call("typing_start", {"conversation_id": conversation})
    carol_client.wait_for("typing_start")
    # The bucket refills (SOCKET_EVENT_RATE_PER_SECOND): heartbeats are answered again.
    wait_until(lambda: flooder.call("heartbeat", {})["ok"], timeout=5, interval=0.1)
