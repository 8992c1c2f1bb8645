"""Every kind of bad input gets its own 4xx in the envelope, names what is wrong, and
changes no row."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import PushToken, UserNotificationSetting
from tests.factories import EXPO_TOKEN

REGISTER = "/api/v1/notifications/register-token"


def no_rows_written(db_session) -> bool:
    db_session.expire_all()
    tokens = db_session.scalar(select(func.count()).select_from(PushToken))
    settings = db_session.scalar(select(func.count()).select_from(UserNotificationSetting))
    return tokens == 0 and settings == 0


def assert_envelope(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.json
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


@pytest.mark.parametrize("raw", ['{"token": ', "[1, 2", "\x00\x01", '{"token": "a",}', "nul"])
def test_malformed_json_is_400(client, auth_header, db_session, raw):
    response = client.post(
        REGISTER, data=raw, content_type="application/json", headers=auth_header("alice")
    )
    assert_envelope(response, 400, "malformed_json")
    assert no_rows_written(db_session)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_that_is_not_json_is_415(client, auth_header, db_session, content_type):
    response = client.post(
        REGISTER,
        data=f'{{"token": "{EXPO_TOKEN}", "platform": "ios"}}',
        content_type=content_type,
        headers=auth_header("alice"),
    )
    assert_envelope(response, 415, "unsupported_media_type")
    assert no_rows_written(db_session)


def test_unknown_fields_are_400_naming_them(client, auth_header, db_session):
    response = client.post(
        REGISTER,
        json={"token": EXPO_TOKEN, "platform": "ios", "is_admin": True, "zzz": 1},
        headers=auth_header("alice"),
    )
    error = assert_envelope(response, 400, "unknown_field")
    assert set(error["details"]["fields"]) == {"is_admin", "zzz"}
    assert no_rows_written(db_session)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"token": 42, "platform": "ios"}, "token"),
        ({"token": EXPO_TOKEN, "platform": "symbian"}, "platform"),
        ({"token": EXPO_TOKEN, "platform": ["ios"]}, "platform"),
        ({"token": EXPO_TOKEN, "platform": "ios", "provider": "pager"}, "provider"),
        ({"token": EXPO_TOKEN, "platform": "ios", "device_id": "d" * 129}, "device_id"),
        ({"token": EXPO_TOKEN}, "platform"),
        ({"platform": "ios"}, "token"),
        ({"token": "", "platform": "ios"}, "token"),
    ],
)
def test_wrong_types_and_values_are_422_naming_the_field(
    client, auth_header, db_session, body, field
):
    response = client.post(REGISTER, json=body, headers=auth_header("alice"))
    error = assert_envelope(response, 422, "validation_error")
    assert field in error["details"]["fields"]
    assert field in error["message"]
    assert no_rows_written(db_session)


@pytest.mark.parametrize("body", [[], "just a string", 7, None])
def test_a_body_that_is_not_an_object_is_422(client, auth_header, db_session, body):
    response = client.post(REGISTER, json=body, headers=auth_header("alice"))
    assert response.status_code == 422
    assert no_rows_written(db_session)


def test_a_body_over_the_limit_is_413(client, auth_header, db_session, settings):
    huge = "x" * (settings.api.max_request_bytes + 10)
    response = client.post(
        REGISTER, json={"token": huge, "platform": "ios"}, headers=auth_header("alice")
    )
    assert_envelope(response, 413, "payload_too_large")
    assert no_rows_written(db_session)


def test_a_wrong_method_is_405_with_allow(client, auth_header):
    response = client.patch(REGISTER, json={}, headers=auth_header("alice"))
    error = assert_envelope(response, 405, "method_not_allowed")
    assert "POST" in error["details"]["allowed_methods"]
    assert "POST" in response.headers["Allow"]


def test_an_unknown_path_is_404_in_the_envelope(client):
    assert_envelope(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_no_token_is_401(client, db_session):
    response = client.post(REGISTER, json={"token": EXPO_TOKEN, "platform": "ios"})
    assert_envelope(response, 401, "missing_token")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert no_rows_written(db_session)


def test_an_unexpected_error_is_a_500_without_a_trace(app, client):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internal detail")

    response = client.get("/boom")
    assert_envelope(response, 500, "server_error")
    assert "secret internal detail" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"token": EXPO_TOKEN, "platform": "ios", "device_id": "phone\x00"}, "device_id"),
        ({"token": EXPO_TOKEN, "platform": "ios", "app_version": "1.0", "x\x00": 1}, "'x\\x00'"),
    ],
)
def test_a_nul_character_anywhere_is_422_naming_where(client, auth_header, db_session, body, path):
    response = client.post(REGISTER, json=body, headers=auth_header("alice"))
    error = assert_envelope(response, 422, "validation_error")
    assert path in error["details"]["fields"]
    assert no_rows_written(db_session)
