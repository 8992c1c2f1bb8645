"""Bearer JWT authentication: what is accepted, what is refused and why, and roles."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api import create_app
from api.auth import mint_token
from core.catalog import Role
from core.config import load_settings
from models import User
from tests.factories import make_env

SETTINGS_URL = "/api/v1/notifications/settings"
DEVICES_URL = "/api/v1/notifications/users/alice/devices"


def claims(**overrides):
    now = datetime.now(UTC)
    base = {"sub": "alice", "role": "user", "iat": now, "exp": now + timedelta(minutes=5)}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def get_with(client, token):
    return client.get(SETTINGS_URL, headers={"Authorization": f"Bearer {token}"})


def unsigned(payload):
    def b64(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    payload = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in payload.items()}
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(payload)}."


def test_a_valid_token_is_accepted_and_creates_the_user_row(client, settings, db_session):
    token = jwt.encode(claims(), settings.auth.jwt_secret, algorithm="HS256")

    assert get_with(client, token).status_code == 200
    assert db_session.get(User, "alice") is not None


def test_the_role_defaults_to_user(client, settings):
    token = jwt.encode(claims(role=None), settings.auth.jwt_secret, algorithm="HS256")
    assert get_with(client, token).status_code == 200


@pytest.mark.parametrize(
    ("make_token", "code", "words"),
    [
        (
            lambda s: jwt.encode(
                claims(exp=datetime.now(UTC) - timedelta(hours=1)), s.auth.jwt_secret
            ),
            "token_expired",
            "expired",
        ),
        (
            lambda s: jwt.encode(claims(), s.auth.jwt_secret, algorithm="HS512"),
            "invalid_token",
            "algorithm",
        ),
        (lambda s: unsigned(claims()), "invalid_token", "algorithm"),
        (
            lambda s: jwt.encode(claims(), "another-secret-" + "y" * 40),
            "invalid_token",
            "signature",
        ),
        (lambda s: jwt.encode(claims(sub=None), s.auth.jwt_secret), "invalid_token", "'sub'"),
        (lambda s: jwt.encode(claims(exp=None), s.auth.jwt_secret), "invalid_token", "'exp'"),
        (lambda s: jwt.encode(claims(sub="x" * 65), s.auth.jwt_secret), "invalid_token", "sub"),
        (lambda s: jwt.encode(claims(sub="a b"), s.auth.jwt_secret), "invalid_token", "sub"),
        (lambda s: jwt.encode(claims(role="root"), s.auth.jwt_secret), "invalid_token", "role"),
        (lambda s: "not.a.jwt", "invalid_token", "malformed"),
        (
            lambda s: jwt.encode(
                claims(nbf=datetime.now(UTC) + timedelta(hours=1)), s.auth.jwt_secret
            ),
            "invalid_token",
            "not valid yet",
        ),
    ],
    ids=[
        "expired",
        "wrong-algorithm",
        "alg-none",
        "bad-signature",
        "missing-sub",
        "missing-exp",
        "sub-too-long",
        "sub-with-space",
        "unknown-role",
        "garbage",
        "not-yet-valid",
    ],
)
def test_a_bad_token_is_401_saying_why(client, settings, db_session, make_token, code, words):
    response = get_with(client, make_token(settings))

    assert response.status_code == 401
    assert response.json["error"]["code"] == code
    assert words in response.json["error"]["message"]
    assert db_session.query(User).count() == 0


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer ", "token abc"])
def test_a_header_that_is_not_a_bearer_token_is_401(client, header):
    response = client.get(SETTINGS_URL, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "missing_token"


def test_a_64_character_opaque_user_id_is_accepted(client, settings):
    token = jwt.encode(claims(sub="user|" + "é" * 59), settings.auth.jwt_secret)
    assert get_with(client, token).status_code == 200


@pytest.fixture
def rs256_app(database_url, redis_url):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    env = make_env(
        database_url,
        redis_url,
        JWT_ALGORITHM="RS256",
        JWT_PUBLIC_KEY=public_pem,
        JWT_ISSUER="https://auth.example",
        JWT_AUDIENCE="pulse",
    )
    env.pop("JWT_SECRET")
    settings = load_settings(env)
    return create_app(settings), settings, key


def test_an_rs256_deployment_checks_signature_issuer_and_audience(rs256_app):
    app, settings, key = rs256_app
    client = app.test_client()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    good = mint_token(settings, "alice", private_key=private_pem)
    wrong_issuer = jwt.encode(
        claims(iss="https://evil.example", aud="pulse"), key, algorithm="RS256"
    )
    wrong_audience = jwt.encode(
        claims(iss="https://auth.example", aud="other"), key, algorithm="RS256"
    )
    no_audience = jwt.encode(claims(iss="https://auth.example"), key, algorithm="RS256")
    other_key = ec.generate_private_key(ec.SECP256R1())
    es256 = jwt.encode(
        claims(iss="https://auth.example", aud="pulse"), other_key, algorithm="ES256"
    )

    assert get_with(client, good).status_code == 200
    assert "issuer" in get_with(client, wrong_issuer).json["error"]["message"]
    assert "audience" in get_with(client, wrong_audience).json["error"]["message"]
    assert get_with(client, no_audience).status_code == 401
    assert "algorithm" in get_with(client, es256).json["error"]["message"]
    assert get_with(client, jwt.encode(claims(), "x" * 40, algorithm="HS256")).status_code == 401


def test_an_es256_deployment_accepts_es256_tokens(database_url, redis_url):
    key = ec.generate_private_key(ec.SECP256R1())
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    env = make_env(database_url, redis_url, JWT_ALGORITHM="ES256", JWT_PUBLIC_KEY=public_pem)
    app = create_app(load_settings(env))

    token = jwt.encode(claims(), key, algorithm="ES256")
    assert get_with(app.test_client(), token).status_code == 200


def test_a_service_token_reads_devices_without_becoming_a_user(
    client, auth_header, register, db_session
):
    register("alice")

    response = client.get(DEVICES_URL, headers=auth_header("matching-service", Role.SERVICE))

    assert response.status_code == 200
    [device] = response.json["data"]["devices"]
    assert device["provider"] == "expo" and device["is_active"] is True
    assert "token" not in device
    assert db_session.get(User, "matching-service") is None


def test_a_role_that_is_not_allowed_is_403(client, auth_header, register):
    register("alice")

    response = client.get(DEVICES_URL, headers=auth_header("alice", Role.USER))

    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"
    assert "admin or service" in response.json["error"]["message"]


def test_an_admin_reads_devices(client, auth_header, register):
    register("alice")
    response = client.get(DEVICES_URL, headers=auth_header("ops", Role.ADMIN))
    assert response.status_code == 200 and len(response.json["data"]["devices"]) == 1


def test_the_cli_mints_a_token_the_api_accepts(app, client):
    result = app.test_cli_runner().invoke(args=["token", "--user", "u1", "--role", "admin"])

    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert jwt.decode(token, options={"verify_signature": False})["role"] == "admin"
    assert get_with(client, token).status_code == 200
