"""Presence through a real Socket.IO client: subscriptions, multi-device aggregation, busy,
the away and offline timers, visibility (everyone / matches / nobody), low battery and the
HTTP heartbeat."""

from __future__ import annotations

import time
from datetime import datetime

from core.catalog import PresenceVisibility
from tests.realtime.harness import bulk_has, presence_of

UPDATE = "user_presence_update"
BULK = "presence_bulk_update"


def set_visibility(client, auth_header, user_id: str, visibility: PresenceVisibility) -> None:
    response = client.put(
        "/api/v1/notifications/settings",
        json={"privacy": {"presence_visibility": visibility.value}},
        headers=auth_header(user_id),
    )
    assert response.status_code == 200, response.json
    assert response.json["data"]["privacy"]["presence_visibility"] == visibility.value


def test_subscribe_answers_with_a_bulk_update_and_then_changes_arrive(
    gateway, clients, token, users
):
    alice, bob = users(2)
    watcher = clients(gateway, token(bob))
    ack = watcher.call("presence_subscribe", {"user_ids": [alice]})
    assert ack == {"ok": True, "count": 1}
    first = watcher.wait_for(BULK)
    assert first["users"] == [{"user_id": alice, "status": "offline", "last_seen": None}]

    clients(gateway, token(alice))
    online = watcher.wait_for(UPDATE, presence_of(alice))
    assert online["status"] == "online"


def test_presence_is_aggregated_over_devices(gateway, clients, token, users):
    alice, bob = users(2)
    watcher = clients(gateway, token(bob))
    watcher.call("presence_subscribe", {"user_ids": [alice]})
    phone = clients(gateway, token(alice), device_id="phone")
    tablet = clients(gateway, token(alice), device_id="tablet")
    watcher.wait_for(UPDATE, presence_of(alice))

    phone_sid = phone.sid
    phone.disconnect()
    gateway.wait_closed(phone_sid)  # whatever that disconnect announced is on its way
    seen = watcher.barrier()
    assert [u["status"] for u in watcher.received(UPDATE, presence_of(alice), seen)] == ["online"]

    tablet.disconnect()
    away = watcher.wait_for(UPDATE, lambda d: d["user_id"] == alice and d["status"] == "away")
    assert away["last_seen"] is not None


def test_busy_is_shown_while_the_user_sets_it(gateway, clients, token, users):
    alice, bob = users(2)
    watcher = clients(gateway, token(bob))
    watcher.call("presence_subscribe", {"user_ids": [alice]})
    me = clients(gateway, token(alice))
    watcher.wait_for(UPDATE, lambda d: d["user_id"] == alice and d["status"] == "online")

    ack = me.call("presence_update", {"status": "busy"})
    assert ack["presence"]["status"] == "busy"
    busy = watcher.index_of(UPDATE, lambda d: d["user_id"] == alice and d["status"] == "busy")
    me.call("presence_update", {"status": "online"})
    watcher.index_of(
        UPDATE, lambda d: d["user_id"] == alice and d["status"] == "online", after=busy
    )


def test_idle_connections_turn_away_and_activity_brings_them_back(
    fast_gateway, clients, token, users
):
    alice, bob = users(2)
    watcher = clients(fast_gateway, token(bob))
    watcher.call("presence_subscribe", {"user_ids": [alice]})
    me = clients(fast_gateway, token(alice))
    watcher.wait_for(UPDATE, lambda d: d["user_id"] == alice and d["status"] == "online")
    # AWAY_AFTER_SECONDS=2: no activity for two seconds on every connection.
    watcher.wait_for(UPDATE, lambda d: d["user_id"] == alice and d["status"] == "away", 4)
    watcher.clear()
    me.call("activity", {"activity_type": "swipe"})
    watcher.wait_for(UPDATE, lambda d: d["user_id"] == alice and d["status"] == "online")
    activity = watcher.wait_for("user_activity_update", presence_of(alice))
    assert activity["activity_type"] == "swipe"


def test_after_the_last_connection_closes_away_then_offline_with_last_seen(
    fast_gateway, clients, token, users
):
    alice, bob = users(2)
    watcher = clients(fast_gateway, token(bob))
    watcher.call("presence_subscribe", {"user_ids": [alice]})
    me = clients(fast_gateway, token(alice))
    watcher.wait_for(UPDATE, lambda d: d["user_id"] == alice and d["status"] == "online")
    closing = time.time()
    me.disconnect()
    away = watcher.wait_for(UPDATE, lambda d: d["user_id"] == alice and d["status"] == "away")
    closed_at = datetime.fromisoformat(away["last_seen"]).timestamp()
    assert closing - 0.1 <= closed_at
    # OFFLINE_AFTER_SECONDS=2
    offline = watcher.wait_for(
        UPDATE, lambda d: d["user_id"] == alice and d["status"] == "offline", 5
    )
    assert time.time() - closed_at >= 1.9
    assert offline["last_seen"] == away["last_seen"]


def test_nobody_visibility_shows_offline_without_last_seen_and_sends_nothing(
    gateway, clients, token, users, client, auth_header
):
    alice, bob = users(2)
    set_visibility(client, auth_header, alice, PresenceVisibility.NOBODY)
    me = clients(gateway, token(alice))
    watcher = clients(gateway, token(bob))
    watcher.call("presence_subscribe", {"user_ids": [alice]})
    bulk = watcher.wait_for(BULK, bulk_has(alice))
    assert bulk["users"] == [{"user_id": alice, "status": "offline", "last_seen": None}]
    me.call("presence_update", {"status": "busy"})
    my_sid = me.sid
    me.disconnect()
    gateway.wait_closed(my_sid)  # whatever that disconnect announced is on its way
    seen = watcher.barrier()
    assert watcher.received(UPDATE, presence_of(alice), seen) == []


def test_matches_visibility_shows_presence_to_matches_only(
    gateway, clients, token, users, client, auth_header, match
):
    alice, friend, stranger = users(3)
    match(alice, friend)
    set_visibility(client, auth_header, alice, PresenceVisibility.MATCHES)
    friend_client = clients(gateway, token(friend))
    stranger_client = clients(gateway, token(stranger))
    for watcher in (friend_client, stranger_client):
        watcher.call("presence_subscribe", {"user_ids": [alice]})
    clients(gateway, token(alice))

    friend_client.wait_for(UPDATE, lambda d: d["user_id"] == alice and d["status"] == "online")
    # Alice's connect was handled (its announcement made) before her client connected.
    seen = stranger_client.barrier()
    assert stranger_client.received(UPDATE, presence_of(alice), seen) == []
    stranger_client.clear()
    stranger_client.call("presence_subscribe", {"user_ids": [alice]})
    bulk = stranger_client.wait_for(BULK)
    assert bulk["users"] == [{"user_id": alice, "status": "offline", "last_seen": None}]


def test_turning_visibility_off_tells_watchers_offline_at_once(
    gateway, clients, token, users, client, auth_header
):
    alice, bob = users(2)
    clients(gateway, token(alice))
    watcher = clients(gateway, token(bob))
    watcher.call("presence_subscribe", {"user_ids": [alice]})
    watcher.wait_for(BULK, bulk_has(alice, "online"))
    set_visibility(client, auth_header, alice, PresenceVisibility.NOBODY)
    hidden = watcher.wait_for(UPDATE, presence_of(alice))
    assert hidden == {"user_id": alice, "status": "offline", "last_seen": None}


def test_a_low_battery_connection_gets_changes_coalesced(fast_gateway, clients, token, users):
    alice, bob = users(2)
    watcher = clients(fast_gateway, token(bob), low_battery=True)
    watcher.call("presence_subscribe", {"user_ids": [alice]})
    watcher.wait_for(BULK)
    watcher.clear()
    me = clients(fast_gateway, token(alice))
    me.call("presence_update", {"status": "busy"})
    me.call("presence_update", {"status": "online"})
    me.call("presence_update", {"status": "busy"})
    # PRESENCE_UPDATE_INTERVAL=1000 ms: one bulk update with the latest state, no singles.
    first = watcher.index_of(BULK, bulk_has(alice), 3)
    bulk = watcher.events[first][1]
    assert bulk["coalesced"] is True
    assert bulk["users"] == [
        {"user_id": alice, "status": "busy", "last_seen": bulk["users"][0]["last_seen"]}
    ]
    # A later change must come in the next coalesced update; nothing else before it.
    me.call("presence_update", {"status": "online"})
    second = watcher.index_of(BULK, bulk_has(alice, "online"), 3, after=first)
    assert watcher.received(BULK, before=second) == [bulk]
    assert watcher.received(UPDATE, before=second) == []


def test_http_heartbeat_keeps_a_backgrounded_device_present_and_is_rate_limited(
    gateway, clients, token, users, client, auth_header
):
    alice, bob = users(2)
    watcher = clients(gateway, token(bob))
    watcher.call("presence_subscribe", {"user_ids": [alice]})
    first = client.post(
        "/api/v1/realtime/heartbeat", json={"device_id": "iphone"}, headers=auth_header(alice)
    )
    assert first.status_code == 200, first.json
    assert first.json["data"]["presence"]["status"] == "away"
    assert first.json["data"]["presence"]["last_seen"] is not None
    watcher.wait_for(UPDATE, lambda d: d["user_id"] == alice and d["status"] == "away")

    again = client.post(
        "/api/v1/realtime/heartbeat", json={"device_id": "iphone"}, headers=auth_header(alice)
    )
    assert again.status_code == 429
    assert again.json["error"]["code"] == "rate_limited"
    assert 0 < int(again.headers["Retry-After"]) <= 30
    other_device = client.post(
        "/api/v1/realtime/heartbeat", json={"device_id": "ipad"}, headers=auth_header(alice)
    )
    assert other_device.status_code == 200


def test_http_heartbeat_for_a_connection_refreshes_it(
    gateway, clients, token, users, client, auth_header
):
    alice, bob = users(2)
    me = clients(gateway, token(alice))
    ok = client.post(
        "/api/v1/realtime/heartbeat",
        json={"connection_id": me.sid, "low_battery": True},
        headers=auth_header(alice),
    )
    assert ok.status_code == 200
    assert ok.json["data"]["presence"]["status"] == "online"
    assert (
        client.post(
            "/api/v1/realtime/heartbeat", json={"connection_id": me.sid}, headers=auth_header(alice)
        ).status_code
        == 429
    )
    someone_elses = client.post(
        "/api/v1/realtime/heartbeat", json={"connection_id": me.sid}, headers=auth_header(bob)
    )
    assert someone_elses.status_code == 404
