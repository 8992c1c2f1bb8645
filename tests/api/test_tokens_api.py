"""Registering and unregistering device tokens through the HTTP API."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from sqlalchemy import select, text

from models import PushToken
from tests.factories import APNS_TOKEN, EXPO_TOKEN, FCM_TOKEN

URL = "/api/v1/notifications/register-token"
UNREGISTER = "/api/v1/notifications/unregister-token"


def tokens_of(db_session, user_id):
    db_session.expire_all()
    return db_session.scalars(select(PushToken).where(PushToken.user_id == user_id)).all()


def test_registering_a_new_token_answers_201_in_the_seeds_shape(register, db_session):
    response = register("alice")

    assert response.status_code == 201
    assert response.json["success"] is True
    assert response.json["data"]["message"] == "Device token registered successfully"
    token_id = uuid.UUID(response.json["data"]["token_id"])
    [row] = tokens_of(db_session, "alice")
    assert row.id == token_id and row.is_active and row.provider == "expo"


@pytest.mark.parametrize(
    ("token", "platform", "provider"),
    [
        (EXPO_TOKEN, "android", "expo"),
        ("ExpoPushToken[abcdefghijklmnop]", "ios", "expo"),
        (APNS_TOKEN, "ios", "apns"),
        (FCM_TOKEN, "android", "fcm"),
        (FCM_TOKEN, "web", "fcm"),
    ],
)
def test_the_provider_is_inferred_from_the_tokens_form(
    register, db_session, token, platform, provider
):
    assert register("alice", token=token, platform=platform).status_code == 201
    [row] = tokens_of(db_session, "alice")
    assert (row.provider, row.platform) == (provider, platform)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"token": "not-a-token", "platform": "ios"}, "matches no provider"),
        ({"token": "ab" * 10, "platform": "ios", "provider": "apns"}, "apns token must be"),
        ({"token": EXPO_TOKEN, "platform": "ios", "provider": "fcm"}, "fcm token must be"),
        ({"token": APNS_TOKEN, "platform": "android"}, "does not deliver to the android"),
        ({"token": "ExponentPushToken[]", "platform": "ios"}, "matches no provider"),
    ],
)
def test_a_token_of_the_wrong_form_is_refused_naming_the_form(
    client, auth_header, db_session, fields, why
):
    response = client.post(URL, json=fields, headers=auth_header("alice"))

    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error"
    assert "token" in response.json["error"]["details"]["fields"]
    assert why in response.json["error"]["message"]
    assert tokens_of(db_session, "alice") == []


def test_registering_the_same_token_again_is_idempotent(register, db_session):
    first = register("alice", device_id="phone-1")
    [row] = tokens_of(db_session, "alice")
    first_used = row.last_used
    db_session.execute(
        text("UPDATE push_tokens SET is_active = false, deactivation_reason = 'Unregistered'")
    )
    db_session.commit()

    again = register("alice", device_id="phone-1")

    assert again.status_code == 200
    assert again.json["data"]["token_id"] == first.json["data"]["token_id"]
    assert again.json["data"]["message"] == "Device token already registered"
    [row] = tokens_of(db_session, "alice")
    assert row.is_active and row.deactivation_reason is None
    assert row.last_used > first_used


def test_an_apns_token_is_the_same_token_in_any_letter_case(register, db_session):
    register("alice", token="AB" * 32)
    again = register("alice", token="ab" * 32)

    assert again.status_code == 200
    assert len(tokens_of(db_session, "alice")) == 1


def test_a_token_registered_by_another_user_moves_to_the_caller(register, db_session):
    alice = register("alice")
    bob = register("bob")

    assert bob.status_code == 201
    assert bob.json["data"]["token_id"] == alice.json["data"]["token_id"]
    assert tokens_of(db_session, "alice") == []
    assert len(tokens_of(db_session, "bob")) == 1


def test_a_new_token_for_the_same_device_replaces_the_old_one(register, db_session):
    register("alice", token="ExponentPushToken[old-token-0000000000]", device_id="phone-1")
    register("alice", token="ExponentPushToken[new-token-0000000000]", device_id="phone-1")
    register("alice", token=APNS_TOKEN, device_id="phone-2")

    states = sorted(
        (row.device_id, row.is_active, row.deactivation_reason)
        for row in tokens_of(db_session, "alice")
    )
    assert states == [
        ("phone-1", False, "replaced"),
        ("phone-1", True, None),
        ("phone-2", True, None),
    ]


def test_the_token_is_encrypted_at_rest_and_never_returned(register, db_session):
    response = register("alice", token=APNS_TOKEN)

    raw = db_session.execute(text("SELECT * FROM push_tokens")).mappings().one()
    stored = " ".join(str(value) for value in raw.values())
    assert APNS_TOKEN not in stored
    assert raw["token_hash"] != hashlib.sha256(APNS_TOKEN.encode()).digest()
    assert APNS_TOKEN not in response.get_data(as_text=True)


def test_the_stored_ciphertext_decrypts_to_the_token(app, register, db_session):
    register("alice", token=FCM_TOKEN, platform="android")
    [row] = tokens_of(db_session, "alice")

    assert app.extensions["pulse.runtime"].cipher.decrypt(row.token_ciphertext) == FCM_TOKEN


def test_unregister_by_token_and_by_id_is_idempotent(client, register, auth_header, db_session):
    token_id = register("alice").json["data"]["token_id"]
    register("alice", token=APNS_TOKEN)

    by_value = client.delete(UNREGISTER, json={"token": EXPO_TOKEN}, headers=auth_header("alice"))
    again = client.delete(UNREGISTER, json={"token_id": token_id}, headers=auth_header("alice"))

    assert by_value.status_code == 200 and again.status_code == 200
    assert by_value.json["data"]["token_id"] == token_id
    states = {str(r.id): r.is_active for r in tokens_of(db_session, "alice")}
    assert states[token_id] is False
    assert sorted(states.values()) == [False, True]


def test_a_user_cannot_unregister_someone_elses_token(client, register, auth_header, db_session):
    token_id = register("alice").json["data"]["token_id"]

    by_id = client.delete(UNREGISTER, json={"token_id": token_id}, headers=auth_header("mallory"))
    by_value = client.delete(UNREGISTER, json={"token": EXPO_TOKEN}, headers=auth_header("mallory"))

    assert by_id.status_code == 404 and by_value.status_code == 404
    assert by_id.json["error"]["code"] == "not_found"
    assert [row.is_active for row in tokens_of(db_session, "alice")] == [True]


@pytest.mark.parametrize(
    "body", [{}, {"token": EXPO_TOKEN, "token_id": str(uuid.uuid4())}, {"token_id": "nope"}]
)
def test_unregister_needs_exactly_one_valid_key(client, auth_header, body):
    response = client.delete(UNREGISTER, json=body, headers=auth_header("alice"))

    assert response.status_code == 422
    assert response.json["error"]["details"]["fields"]


def test_unregistering_an_unknown_token_id_is_not_found(client, auth_header):
    response = client.delete(
        UNREGISTER, json={"token_id": str(uuid.uuid4())}, headers=auth_header("alice")
    )
    assert response.status_code == 404
