"""The handshake: a JWT in auth {token} or the Authorization header; refusals name the
reason and join nothing; connection records live in Redis and show in the status API."""

from __future__ import annotations

from datetime import timedelta

import pytest
import socketio

from api.auth import mint_token
from core import keys
from core.catalog import Role
from tests.realtime.harness import Client
from tests.waiting import wait_until


def test_a_token_in_the_auth_payload_connects_and_joins_the_user_room(
    gateway, clients, token, users, redis_client, test_settings
):
    (alice,) = users(1)
    client = clients(gateway, token(alice), device_id="iphone-15", platform="ios")
    record = redis_client.hgetall(
        keys.rt_connection(test_settings.storage.redis_key_prefix, client.sid)
    )
    assert record[b"user_id"] == alice.encode()
    assert record[b"device_id"] == b"iphone-15"
    assert record[b"platform"] == b"ios"
    assert (
        redis_client.ttl(keys.rt_connection(test_settings.storage.redis_key_prefix, client.sid)) > 0
    )


def test_a_token_in_the_authorization_header_connects(gateway, token, users):
    (alice,) = users(1)
    client = Client(gateway.url, None)
    client.connect(headers={"Authorization": f"Bearer {token(alice)}"})
    try:
        assert client.sio.connected
    finally:
        client.disconnect()


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda s: None, "missing_token"),
        (lambda s: "not-a-jwt", "invalid_token"),
        (lambda s: mint_token(s, "bob", Role.USER, ttl=timedelta(seconds=-120)), "token_expired"),
    ],
    ids=["missing", "malformed", "expired"],
)
def test_a_bad_token_is_refused_with_a_connect_error_naming_the_reason(
    gateway, test_settings, make_token, reason
):
    client = Client(gateway.url, make_token(test_settings))
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect()
    assert reason in client.connect_error["message"]
    assert client.connect_error["data"]["code"] == reason


def test_a_refused_connection_leaves_no_record(gateway, redis_client, test_settings):
    before = redis_client.zcard(
        keys.rt_connections_by_expiry(test_settings.storage.redis_key_prefix)
    )
    client = Client(gateway.url, "garbage")
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect()
    after = redis_client.zcard(
        keys.rt_connections_by_expiry(test_settings.storage.redis_key_prefix)
    )
    assert after == before


def test_status_shows_the_callers_connection_and_the_count_across_gateways(
    gateway, clients, token, users, client, auth_header
):
    alice, bob = users(2)
    clients(gateway, token(alice))
    clients(gateway, token(alice), device_id="ipad")
    # Other tests flush Redis: a gateway announces itself again on its next loop round.
    def status_once_healthy() -> dict | None:
        data = client.get("/api/v1/realtime/status", headers=auth_header(alice)).json["data"]
        return data if data["server_status"] == "healthy" else None

    mine = wait_until(status_once_healthy, timeout=5, interval=0.1)
    assert mine["websocket_connected"] is True
    assert mine["last_heartbeat"] is not None
    assert mine["active_connections"] >= 2
    assert mine["server_status"] == "healthy"
    assert set(mine["features"]) == {
        "typing_indicators",
        "read_receipts",
        "presence_status",
        "push_notifications",
    }
    theirs = client.get("/api/v1/realtime/status", headers=auth_header(bob)).json["data"]
    assert theirs["websocket_connected"] is False


def test_disconnecting_removes_the_record(gateway, clients, token, users, client, auth_header):
    (alice,) = users(1)
    socket_client = clients(gateway, token(alice))
    socket_client.disconnect()
    mine = client.get("/api/v1/realtime/status", headers=auth_header(alice)).json["data"]
    assert mine["websocket_connected"] is False
