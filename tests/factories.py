"""Plain test data and builders, imported by any test module (fixtures stay in conftest.py):
the environment of a test app, provider-shaped device tokens, push messages."""

from __future__ import annotations

from typing import Any

from alembic.config import Config
from cryptography.fernet import Fernet

from core.catalog import Priority
from providers.base import PushMessage

# --- settings -------------------------------------------------------------------------

# Delivery tests run at any hour: without this, the default 22:00-08:00 window (UTC for a
# new user) would defer their pushes at night. The quiet-hours tests set their own.
NO_QUIET_HOURS = {"QUIET_HOURS_DEFAULT_START": "00:00", "QUIET_HOURS_DEFAULT_END": "00:00"}


def make_env(database_url: str, redis_url: str, **overrides: str) -> dict[str, str]:
    env = {
        "PULSE_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": "test-secret-" + "x" * 40,
        "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "TOKEN_HASH_KEY": "test-hash-key-0123456789",
        "LOG_LEVEL": "WARNING",
    }
    env.update(overrides)
    return env


def alembic_config(url: str) -> Config:
    config = Config("alembic.ini")
    config.attributes["url"] = url
    config.attributes["configure_logging"] = False
    return config


# --- device tokens, one shape per provider ----------------------------------------------

EXPO_TOKEN = "ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]"
APNS_TOKEN = "a" * 64
FCM_TOKEN = "fcm_" + "b" * 140 + ":APA91b"


def apns_token(n: int) -> str:
    return f"{n:064x}"


def fcm_token(n: int) -> str:
    return f"c{n:07d}:APA91b" + "E" * 140


def expo_token(n: int) -> str:
    return f"ExponentPushToken[{n:022d}]"


# --- push messages --------------------------------------------------------------------


def push(token: str, ref: str = "d-1", **fields: Any) -> PushMessage:
    values: dict[str, Any] = {
        "title": "New match",
        "body": "You and Alex liked each other",
        "data": {"type": "new_match", "match_id": "m-42"},
        "priority": Priority.HIGH,
    }
    values.update(fields)
    return PushMessage(ref=ref, token=token, **values)
