"""Settings are validated at start-up, and each error names the bad variable."""

from __future__ import annotations

from datetime import time

import pytest
from cryptography.fernet import Fernet

from core.config import ConfigError, load_settings

GOOD = {
    "DATABASE_URL": "postgresql://u@h/db",
    "REDIS_URL": "redis://h:6379/0",
    "JWT_SECRET": "s" * 32,
    "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "TOKEN_HASH_KEY": "h" * 16,
}


def with_env(**changes):
    env = dict(GOOD)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def test_defaults_follow_the_seed():
    settings = load_settings(GOOD)
    assert settings.env == "production"
    assert settings.notification_batch_size == 400
    assert settings.presence_update_interval_ms == 30000
    assert settings.heartbeat_interval_ms == 30000
    assert (settings.quiet_hours_default_start, settings.quiet_hours_default_end) == (
        time(22),
        time(8),
    )
    assert settings.expo_push_host == "https://exp.host"
    assert settings.fcm_endpoint == "https://fcm.googleapis.com"


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"DATABASE_URL": None}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"REDIS_URL": None}, "REDIS_URL"),
        ({"JWT_SECRET": None}, "JWT_SECRET"),
        ({"JWT_SECRET": "short"}, "JWT_SECRET"),
        ({"JWT_ALGORITHM": "none"}, "JWT_ALGORITHM"),
        ({"JWT_ALGORITHM": "RS256"}, "JWT_PUBLIC_KEY"),
        ({"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY": "not a key"}, "JWT_PUBLIC_KEY"),
        ({"TOKEN_ENCRYPTION_KEY": None}, "TOKEN_ENCRYPTION_KEY"),
        ({"TOKEN_ENCRYPTION_KEY": "not-a-fernet-key"}, "TOKEN_ENCRYPTION_KEY"),
        ({"TOKEN_HASH_KEY": None}, "TOKEN_HASH_KEY"),
        ({"NOTIFICATION_BATCH_SIZE": "fifty"}, "NOTIFICATION_BATCH_SIZE"),
        ({"NOTIFICATION_BATCH_SIZE": "0"}, "NOTIFICATION_BATCH_SIZE"),
        ({"QUIET_HOURS_DEFAULT_START": "10pm"}, "QUIET_HOURS_DEFAULT_START"),
        ({"QUIET_HOURS_DEFAULT_END": "25:00"}, "QUIET_HOURS_DEFAULT_END"),
        ({"APNS_USE_SANDBOX": "maybe"}, "APNS_USE_SANDBOX"),
        ({"APPLE_PUSH_KEY_FILE": "/nonexistent/key.p8"}, "APPLE_PUSH_KEY_FILE"),
        ({"EXPO_PUSH_HOST": "exp.host"}, "EXPO_PUSH_HOST"),
        ({"PULSE_ENV": "staging"}, "PULSE_ENV"),
        ({"GOOGLE_FCM_SERVER_KEY": "AAAA-legacy"}, "GOOGLE_FCM_SERVER_KEY"),
    ],
)
def test_a_bad_variable_is_named(changes, named):
    with pytest.raises(ConfigError, match=named):
        load_settings(with_env(**changes))


def test_several_encryption_keys_allow_rotation():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = load_settings(with_env(TOKEN_ENCRYPTION_KEY=f"{new}, {old}"))
    assert settings.token_encryption_keys == (new, old)


def test_quiet_hours_defaults_come_from_the_environment():
    settings = load_settings(
        with_env(QUIET_HOURS_DEFAULT_START="23:15", QUIET_HOURS_DEFAULT_END="06:45")
    )
    assert (settings.quiet_hours_default_start, settings.quiet_hours_default_end) == (
        time(23, 15),
        time(6, 45),
    )


def test_development_points_at_the_embedded_servers_when_no_url_is_set():
    env = with_env(
        DATABASE_URL=None,
        REDIS_URL=None,
        PULSE_ENV="development",
        PULSE_EMBEDDED_PG_PORT="54329",
        PULSE_EMBEDDED_REDIS_PORT="63799",
    )
    settings = load_settings(env)
    assert settings.database_url.endswith("@127.0.0.1:54329/pulse")
    assert settings.redis_url == "redis://127.0.0.1:63799/0"


def test_production_never_defaults_a_database():
    env = with_env(DATABASE_URL=None, PULSE_EMBEDDED_PG_PORT="54329")
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings(env)
