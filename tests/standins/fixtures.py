"""pytest fixtures for the provider stand-ins (load with
`pytest_plugins = ["tests.standins.fixtures"]` in tests/conftest.py).

Each server starts once per session; the per-test fixtures reset its rules and records.
Settings built here carry dummy database/Redis/secrets values that nothing connects to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from core.config import Settings, load_settings
from tests.standins.apns import APNsStandIn
from tests.standins.expo import ExpoStandIn
from tests.standins.fcm import FCMStandIn

# Valid-looking values for what load_settings requires; provider tests never open them.
BASE_ENV: dict[str, str] = {
    "PULSE_ENV": "test",
    "DATABASE_URL": "postgresql://pulse@127.0.0.1:1/pulse_unused",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "JWT_SECRET": "standin-jwt-secret-0123456789abcdef",
    "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "TOKEN_HASH_KEY": "standin-token-hash-key",
}

SettingsFactory = Callable[..., Settings]


def make_settings(*envs: Mapping[str, str], **overrides: str) -> Settings:
    """Settings from BASE_ENV plus each mapping in turn (e.g. a stand-in's client_env())."""
    env = dict(BASE_ENV)
    for extra in envs:
        env.update(extra)
    env.update(overrides)
    return load_settings(env)


@pytest.fixture
def provider_settings() -> SettingsFactory:
    return make_settings


@pytest.fixture(scope="session")
def _apns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APNsStandIn]:
    server = APNsStandIn(directory=Path(tmp_path_factory.mktemp("apns-standin"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _fcm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FCMStandIn]:
    server = FCMStandIn(directory=Path(tmp_path_factory.mktemp("fcm-standin"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _expo_server() -> Iterator[ExpoStandIn]:
    server = ExpoStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def apns_standin(_apns_server: APNsStandIn) -> Iterator[APNsStandIn]:
    _apns_server.reset()
    yield _apns_server
    _apns_server.reset()


@pytest.fixture
def fcm_standin(_fcm_server: FCMStandIn) -> Iterator[FCMStandIn]:
    _fcm_server.reset()
    yield _fcm_server
    _fcm_server.reset()


@pytest.fixture
def expo_standin(_expo_server: ExpoStandIn) -> Iterator[ExpoStandIn]:
    _expo_server.reset()
    yield _expo_server
    _expo_server.reset()
