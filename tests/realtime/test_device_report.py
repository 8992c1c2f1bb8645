"""The device's time zone and locale from the socket handshake's auth payload and the HTTP
heartbeat: recorded (the most recent report wins), written only when they change, and
refused by name when malformed (connect_error invalid_handshake / 422)."""

from __future__ import annotations

import pytest
import socketio

from core.catalog import Role
from models.users import User
from tests.realtime.harness import Client


def device_report(db_session, user_id: str) -> tuple:
    db_session.expire_all()
    user = db_session.get(User, user_id)
    assert user is not None, user_id
    return user.device_timezone, user.device_locale, user.device_reported_at


def heartbeat(client, auth_header, user_id: str, **body):
    return client.post("/api/v1/realtime/heartbeat", json=body, headers=auth_header(user_id))


def test_the_handshake_records_the_devices_zone_and_locale(
    gateway, clients, token, users, app, db_session
):
    (alice,) = users(1)

    # The gateway answers the handshake once its connect handler (and its commit) is done.
    clients(gateway, token(alice), device_id="iphone", timezone="America/New_York", locale="es-mx")

    zone, locale, reported_at = device_report(db_session, alice)
    assert (zone, locale) == ("America/New_York", "es-MX")
    assert reported_at is not None


def test_a_later_handshake_from_elsewhere_wins(gateway, clients, token, users, app, db_session):
    (alice,) = users(1)
    clients(gateway, token(alice), device_id="iphone", timezone="America/New_York", locale="en")
    first = device_report(db_session, alice)

    clients(gateway, token(alice), device_id="iphone", timezone="Asia/Tokyo")

    zone, locale, reported_at = device_report(db_session, alice)
    assert (zone, locale) == ("Asia/Tokyo", "en")
    assert reported_at > first[2]


def test_a_handshake_without_them_changes_nothing(gateway, clients, token, users, app, db_session):
    (alice,) = users(1)
    clients(gateway, token(alice), device_id="iphone", timezone="Asia/Tokyo", locale="ja")
    before = device_report(db_session, alice)

    clients(gateway, token(alice), device_id="ipad")

    assert device_report(db_session, alice) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [("timezone", "Not/AZone"), ("timezone", 9), ("locale", "english"), ("locale", "en_")],
)
def test_a_bad_zone_or_locale_refuses_the_handshake_naming_the_field(
    gateway, token, users, app, db_session, field, value
):
    (alice,) = users(1)
    client = Client(gateway.url, token(alice), device_id="iphone", **{field: value})

    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect()

    assert client.connect_error["data"]["code"] == "invalid_handshake"
    assert list(client.connect_error["data"]["fields"]) == [field]
    assert field in client.connect_error["message"]
    assert db_session.get(User, alice) is None  # refused before anything was written


def test_a_service_handshake_with_a_zone_records_nothing(
    gateway, clients, token, users, app, db_session
):
    (service,) = users(1)
    connected = clients(gateway, token(service, Role.SERVICE), timezone="Asia/Tokyo")
    assert connected.sio.connected
    assert db_session.get(User, service) is None


def test_the_heartbeat_records_them_and_a_repeat_writes_nothing(
    gateway, clients, token, users, client, auth_header, db_session
):
    (alice,) = users(1)
    socket_client = clients(gateway, token(alice), device_id="iphone")
    assert device_report(db_session, alice) == (None, None, None)

    first = heartbeat(
        client,
        auth_header,
        alice,
        connection_id=socket_client.sid,
        timezone="Europe/Paris",
        locale="fr-fr",
    )
    assert first.status_code == 200, first.json
    recorded = device_report(db_session, alice)
    assert recorded[:2] == ("Europe/Paris", "fr-FR")

    # The same report from the backgrounded device (its own rate-limit key): no write.
    again = heartbeat(
        client, auth_header, alice, device_id="iphone", timezone="Europe/Paris", locale="fr-FR"
    )
    assert again.status_code == 200, again.json
    assert device_report(db_session, alice) == recorded

    moved = heartbeat(client, auth_header, alice, device_id="ipad", timezone="Europe/London")
    assert moved.status_code == 200, moved.json
    zone, locale, reported_at = device_report(db_session, alice)
    assert (zone, locale) == ("Europe/London", "fr-FR")
    assert reported_at > recorded[2]


@pytest.mark.parametrize(
    ("field", "value"), [("timezone", "Europe/Atlantis"), ("locale", "fr--FR")]
)
def test_the_heartbeat_refuses_a_bad_zone_or_locale_naming_the_field(
    client, auth_header, users, db_session, field, value
):
    (alice,) = users(1)

    response = heartbeat(client, auth_header, alice, device_id="iphone", **{field: value})

    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "validation_error"
    assert list(response.json["error"]["details"]["fields"]) == [field]
    assert device_report(db_session, alice) == (None, None, None)
