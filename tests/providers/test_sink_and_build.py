"""Which provider each name gets for a configuration, and what the sink does instead of
delivering (accept, log a fingerprint, record, never keep the token or the body)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from core.catalog import Provider
from providers.apns import APNsProvider
from providers.base import Outcome, token_fingerprint
from providers.expo import ExpoProvider
from providers.fcm import FCMProvider
from providers.registry import build_providers
from providers.sink import SinkProvider
from tests.factories import apns_token, expo_token, push
from tests.standins.apns import APNsStandIn
from tests.standins.fcm import FCMStandIn
from tests.standins.fixtures import SettingsFactory


def test_the_sink_accepts_logs_a_fingerprint_and_records_without_token_or_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorded: list[dict[str, Any]] = []
    sink = SinkProvider(Provider.APNS, recorded.append)
    message = push(apns_token(1), "d-1", body="secret body words", thread_id="conv-1")
    with caplog.at_level(logging.INFO):
        [result] = sink.send([message])
    assert result.outcome is Outcome.SENT
    assert result.provider_message_id and result.provider_message_id.startswith("sink-")
    [entry] = recorded
    assert entry["ref"] == "d-1"
    assert entry["provider"] == "apns"
    assert entry["title"] == "New match"
    assert entry["data_keys"] == ["match_id", "type"]
    assert entry["token_fingerprint"] == token_fingerprint(apns_token(1))
    assert apns_token(1) not in str(recorded) and "secret body words" not in str(recorded)
    assert token_fingerprint(apns_token(1)) in caplog.text
    assert apns_token(1) not in caplog.text and "secret body words" not in caplog.text
    assert sink.check_receipts([result.provider_message_id])[
        result.provider_message_id
    ].outcome is (Outcome.SENT)


def test_development_without_credentials_never_leaves_the_machine(
    provider_settings: SettingsFactory,
) -> None:
    providers = build_providers(provider_settings(PULSE_ENV="development"))
    assert {name: type(p) for name, p in providers.items()} == {
        Provider.EXPO: SinkProvider,
        Provider.APNS: SinkProvider,
        Provider.FCM: SinkProvider,
    }
    [result] = providers[Provider.EXPO].send([push(expo_token(1))])
    assert result.outcome is Outcome.SENT


def test_production_uses_expo_for_real_and_sinks_unconfigured_providers(
    provider_settings: SettingsFactory,
) -> None:
    providers = build_providers(provider_settings(PULSE_ENV="production"))
    assert type(providers[Provider.EXPO]) is ExpoProvider
    assert type(providers[Provider.APNS]) is SinkProvider
    assert type(providers[Provider.FCM]) is SinkProvider


def test_configured_credentials_and_hosts_give_real_providers_even_in_development(
    provider_settings: SettingsFactory, apns_standin: APNsStandIn, fcm_standin: FCMStandIn
) -> None:
    settings = provider_settings(
        apns_standin.client_env(),
        fcm_standin.client_env(),
        PULSE_ENV="development",
        EXPO_PUSH_HOST="http://127.0.0.1:9",
    )
    providers = build_providers(settings)
    try:
        assert type(providers[Provider.APNS]) is APNsProvider
        assert type(providers[Provider.FCM]) is FCMProvider
        assert type(providers[Provider.EXPO]) is ExpoProvider
        assert apns_standin.connections_opened == 0  # building connects to nothing
    finally:
        for provider in providers.values():
            provider.close()


def test_half_an_apns_configuration_is_sunk_with_a_warning(
    provider_settings: SettingsFactory,
    apns_standin: APNsStandIn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {**apns_standin.client_env(), "APNS_TOPIC": ""}
    with caplog.at_level(logging.WARNING):
        providers = build_providers(provider_settings(env))
    assert type(providers[Provider.APNS]) is SinkProvider
    assert "apns_partly_configured" in caplog.text and "APNS_TOPIC" in caplog.text
