"""The stand-in fixtures for provider tests. Once tests/conftest.py declares
`pytest_plugins = ["tests.standins.fixtures"]`, this import is redundant but harmless."""

from tests.standins.fixtures import (  # noqa: F401
    _apns_server,
    _expo_server,
    _fcm_server,
    apns_standin,
    expo_standin,
    fcm_standin,
    provider_settings,
)
