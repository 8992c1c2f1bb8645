"""Settings are validated at start-up, and each error names the bad variable."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import time

import pytest
from cryptography.fernet import Fernet

from core import config
from core.config import RENAMED, ConfigError, load_settings

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
    assert settings.delivery.batch_size == 400
    assert settings.realtime.presence_update_interval_ms == 30000
    assert settings.realtime.heartbeat_interval_ms == 30000
    assert (settings.rules.quiet_hours_default_start, settings.rules.quiet_hours_default_end) == (
        time(22),
        time(8),
    )
    assert settings.providers.expo_host == "https://exp.host"
    assert settings.providers.fcm_endpoint == "https://fcm.googleapis.com"


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
        ({"AWAY_AFTER_SECONDS": "0"}, "AWAY_AFTER_SECONDS"),
        ({"SOCKET_EVENT_RATE_PER_SECOND": "fast"}, "SOCKET_EVENT_RATE_PER_SECOND"),
    ],
)
def test_a_bad_variable_is_named(changes, named):
    with pytest.raises(ConfigError, match=named):
        load_settings(with_env(**changes))


def test_several_encryption_keys_allow_rotation():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = load_settings(with_env(TOKEN_ENCRYPTION_KEY=f"{new}, {old}"))
    assert settings.auth.token_encryption_keys == (new, old)


def test_quiet_hours_defaults_come_from_the_environment():
    settings = load_settings(
        with_env(QUIET_HOURS_DEFAULT_START="23:15", QUIET_HOURS_DEFAULT_END="06:45")
    )
    assert (settings.rules.quiet_hours_default_start, settings.rules.quiet_hours_default_end) == (
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
    assert settings.storage.database_url.endswith("@127.0.0.1:54329/pulse")
    assert settings.storage.redis_url == "redis://127.0.0.1:63799/0"


def test_production_never_defaults_a_database():
    env = with_env(DATABASE_URL=None, PULSE_EMBEDDED_PG_PORT="54329")
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings(env)


class CountingEnv(Mapping[str, str]):
    """An environment that counts how often each variable is read."""

    def __init__(self, values: dict[str, str]):
        self.values = values
        self.reads: dict[str, int] = {}

    def __getitem__(self, name: str) -> str:
        self.reads[name] = self.reads.get(name, 0) + 1
        return self.values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


@pytest.mark.parametrize("environment", ["production", "development"])
def test_each_variable_is_read_once(environment):
    env = CountingEnv(with_env(PULSE_ENV=environment, PULSE_EMBEDDED_REDIS_PORT="6390"))
    load_settings(env)
    assert env.reads, "load_settings read nothing through the mapping"
    assert {name: n for name, n in env.reads.items() if n > 1} == {}
    assert {"HEARTBEAT_INTERVAL", "REDIS_KEY_PREFIX", "AWAY_AFTER_SECONDS"} <= set(env.reads)


@pytest.fixture
def deprecations(monkeypatch, caplog) -> pytest.LogCaptureFixture:
    """A fresh process as far as deprecation warnings go, and their log records."""
    monkeypatch.setattr(config, "_deprecations_logged", set())
    caplog.set_level(logging.WARNING, logger="core.config")
    return caplog


def deprecation_records(caplog: pytest.LogCaptureFixture, old: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "core.config" and r.getMessage().startswith(f"{old} ")
    ]


@pytest.mark.parametrize(("new", "old"), sorted(RENAMED.items()))
def test_an_old_name_still_works_and_its_deprecation_is_logged_once(deprecations, new, old):
    first = load_settings(with_env(**{old: "777"}))
    second = load_settings(with_env(**{old: "777"}))
    assert first == second != load_settings(GOOD)
    messages = deprecation_records(deprecations, old)
    assert len(messages) == 1
    assert old in messages[0] and new in messages[0]


def test_old_names_land_in_the_same_fields(deprecations):
    settings = load_settings(
        with_env(
            NOTIFICATION_BATCH_WINDOW="61",
            OUTBOX_REENQUEUE_AFTER="62",
            OUTBOX_SWEEP_INTERVAL="63",
            EXPO_RECEIPT_DELAY="64",
            AWAY_AFTER="65",
            OFFLINE_AFTER="66",
            TYPING_TIMEOUT="67",
            TYPING_PROGRESS_INTERVAL="68",
            REALTIME_CONNECTION_TTL="69",
            REALTIME_SWEEP_INTERVAL="70",
            SOCKET_EVENT_RATE="71",
        )
    )
    assert settings.rules.batch_window_seconds == 61
    assert settings.delivery.outbox_reenqueue_after_seconds == 62
    assert settings.delivery.outbox_sweep_interval_seconds == 63
    assert settings.providers.expo_receipt_delay_seconds == 64
    realtime = settings.realtime
    assert (realtime.away_after_seconds, realtime.offline_after_seconds) == (65, 66)
    assert (realtime.typing_timeout_seconds, realtime.typing_progress_interval_ms) == (67, 68)
    assert (realtime.connection_ttl_seconds, realtime.sweep_interval_ms) == (69, 70)
    assert realtime.event_rate_per_second == 71
    assert sum(len(deprecation_records(deprecations, old)) for old in RENAMED.values()) == 11


def test_the_new_name_wins_over_the_old(deprecations):
    settings = load_settings(with_env(AWAY_AFTER_SECONDS="40", AWAY_AFTER="50"))
    assert settings.realtime.away_after_seconds == 40
    # Even a bad old value is ignored when the new name is set, but said so once.
    settings = load_settings(with_env(AWAY_AFTER_SECONDS="40", AWAY_AFTER="soon"))
    assert settings.realtime.away_after_seconds == 40
    (message,) = deprecation_records(deprecations, "AWAY_AFTER")
    assert "AWAY_AFTER_SECONDS" in message


def test_new_names_log_no_deprecation(deprecations):
    load_settings(with_env(AWAY_AFTER_SECONDS="40", TYPING_PROGRESS_INTERVAL_MS="100"))
    assert [r for r in deprecations.records if r.name == "core.config"] == []


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"OUTBOX_SWEEP_INTERVAL": "soon"}, "OUTBOX_SWEEP_INTERVAL="),
        ({"REALTIME_CONNECTION_TTL": "1"}, "REALTIME_CONNECTION_TTL="),
        ({"SOCKET_EVENT_RATE": "0"}, "SOCKET_EVENT_RATE="),
        ({"OUTBOX_SWEEP_INTERVAL_SECONDS": "soon"}, "OUTBOX_SWEEP_INTERVAL_SECONDS="),
    ],
)
def test_a_bad_value_is_reported_under_the_name_that_was_set(deprecations, changes, named):
    with pytest.raises(ConfigError) as error:
        load_settings(with_env(**changes))
    assert str(error.value).startswith(named)


def test_the_message_queue_and_the_rate_limits_use_redis_url_unless_split_off():
    together = load_settings(with_env())
    assert together.realtime.message_queue_url == together.storage.redis_url
    assert together.api.rate_limit_storage_url == together.storage.redis_url

    apart = load_settings(
        with_env(
            SOCKETIO_MESSAGE_QUEUE="redis://pubsub.internal:6379/0",
            RATELIMIT_STORAGE_URL="rediss://:pw@limits.internal:6380/0",
        )
    )
    assert apart.realtime.message_queue_url == "redis://pubsub.internal:6379/0"
    assert apart.api.rate_limit_storage_url == "rediss://:pw@limits.internal:6380/0"


def test_a_message_queue_that_is_not_a_redis_url_is_named():
    with pytest.raises(ConfigError, match="SOCKETIO_MESSAGE_QUEUE"):
        load_settings(with_env(SOCKETIO_MESSAGE_QUEUE="amqp://rabbit"))
