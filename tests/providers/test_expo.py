"""The Expo provider over real HTTP against the Expo stand-in: chunks of 100, tickets in
order, whole-request failures, receipts in chunks of 1000, one attempt per chunk."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from core.catalog import Priority
from providers.base import Outcome
from providers.expo import ExpoProvider
from tests.factories import expo_token, push
from tests.standins.expo import RECEIPTS_PATH, SEND_PATH, ExpoStandIn
from tests.standins.fixtures import SettingsFactory


@pytest.fixture
def expo(expo_standin: ExpoStandIn, provider_settings: SettingsFactory) -> Iterator[ExpoProvider]:
    provider = ExpoProvider(provider_settings(expo_standin.client_env()))
    yield provider
    provider.close()


def _sends(standin: ExpoStandIn) -> list[list[dict]]:
    return [r.payload for r in standin.received if r.path == SEND_PATH]


def test_250_messages_go_as_three_gzipped_chunks_with_tickets_in_order(
    expo_standin: ExpoStandIn, provider_settings: SettingsFactory
) -> None:
    expo_standin.access_token = "expo-access-token-1"
    provider = ExpoProvider(provider_settings(expo_standin.client_env()))
    messages = [push(expo_token(i), f"d-{i}") for i in range(250)]
    try:
        results = provider.send(messages)
    finally:
        provider.close()

    assert [r.ref for r in results] == [m.ref for m in messages]
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert len({r.provider_message_id for r in results}) == 250
    assert sorted(len(chunk) for chunk in _sends(expo_standin)) == [50, 100, 100]
    for request in expo_standin.received:
        assert request.headers["authorization"] == "Bearer expo-access-token-1"
        assert "gzip" in request.headers["accept-encoding"]
        assert request.headers["content-encoding"] == "gzip"  # bodies over 1 KiB
    sent_order = {m["to"]: m for m in expo_standin.messages}
    assert set(sent_order) == {m.token for m in messages}


def test_the_message_carries_expo_fields(expo: ExpoProvider, expo_standin: ExpoStandIn) -> None:
    expires = datetime.now(UTC) + timedelta(hours=2)
    results = expo.send(
        [
            push(expo_token(1), "d-1", expires_at=expires, badge=4, priority=Priority.CRITICAL),
            push(expo_token(2), "d-2", priority=Priority.LOW, sound=None),
        ]
    )
    assert {r.outcome for r in results} == {Outcome.SENT}
    first, second = expo_standin.messages
    assert first == {
        "to": expo_token(1),
        "title": "New match",
        "body": "You and Alex liked each other",
        "data": {"type": "new_match", "match_id": "m-42"},
        "priority": "high",
        "sound": "default",
        "badge": 4,
        "expiration": int(expires.timestamp()),
    }
    assert second["priority"] == "normal"
    assert "sound" not in second and "expiration" not in second
    assert "authorization" not in expo_standin.received[0].headers  # no access token configured


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("DeviceNotRegistered", Outcome.TOKEN_INVALID),
        ("MessageTooBig", Outcome.PAYLOAD_ERROR),
        ("MessageRateExceeded", Outcome.TRANSIENT),
        ("InvalidCredentials", Outcome.CREDENTIALS_ERROR),
    ],
)
def test_each_ticket_error_reaches_its_outcome(
    expo: ExpoProvider, expo_standin: ExpoStandIn, code: str, outcome: Outcome
) -> None:
    expo_standin.ticket_error(expo_token(2), code)
    ok, failed, also_ok = expo.send(
        [push(expo_token(1), "a"), push(expo_token(2), "b"), push(expo_token(3), "c")]
    )
    assert (ok.outcome, also_ok.outcome) == (Outcome.SENT, Outcome.SENT)
    assert (failed.ref, failed.outcome, failed.error) == ("b", outcome, code)


def test_a_wrong_access_token_is_a_credentials_error_for_the_chunk(
    expo_standin: ExpoStandIn, provider_settings: SettingsFactory
) -> None:
    expo_standin.access_token = "the-right-one"
    env = {**expo_standin.client_env(), "EXPO_PUSH_ACCESS_TOKEN": "a-wrong-one"}
    provider = ExpoProvider(provider_settings(env))
    try:
        results = provider.send([push(expo_token(i), f"d-{i}") for i in range(3)])
    finally:
        provider.close()
    assert {(r.outcome, r.error) for r in results} == {(Outcome.CREDENTIALS_ERROR, "UNAUTHORIZED")}


@pytest.mark.parametrize(
    ("status", "code"), [(503, "INTERNAL_SERVER_ERROR"), (429, "TOO_MANY_REQUESTS")]
)
def test_a_failing_expo_is_transient_with_retry_after_and_one_attempt_per_chunk(
    expo: ExpoProvider, expo_standin: ExpoStandIn, status: int, code: str
) -> None:
    expo_standin.fail_requests(status, retry_after="45")
    started = time.monotonic()
    results = expo.send([push(expo_token(i), f"d-{i}") for i in range(150)])
    elapsed = time.monotonic() - started
    assert {(r.outcome, r.error, r.retry_after) for r in results} == {
        (Outcome.TRANSIENT, code, 45.0)
    }
    assert len(expo_standin.received) == 2  # two chunks, one attempt each
    assert elapsed < 5


def test_fail_n_times_then_succeed_is_left_to_the_caller(
    expo: ExpoProvider, expo_standin: ExpoStandIn
) -> None:
    expo_standin.fail_requests(503, times=1)
    assert expo.send([push(expo_token(1))])[0].outcome is Outcome.TRANSIENT
    assert expo.send([push(expo_token(1))])[0].outcome is Outcome.SENT


def test_malformed_tokens_and_data_fail_alone_without_failing_the_chunk(
    expo: ExpoProvider, expo_standin: ExpoStandIn
) -> None:
    results = expo.send(
        [
            push("not-an-expo-token", "bad-token"),
            push(expo_token(1), "bad-data", data=["not", "an", "object"]),
            push(expo_token(2), "bad-value", data={"when": datetime.now(UTC)}),
            push(expo_token(3), "fine"),
        ]
    )
    assert [(r.ref, r.outcome, r.error) for r in results] == [
        ("bad-token", Outcome.TOKEN_INVALID, "InvalidExpoPushToken"),
        ("bad-data", Outcome.PAYLOAD_ERROR, "BadData"),
        ("bad-value", Outcome.PAYLOAD_ERROR, "BadData"),
        ("fine", Outcome.SENT, None),
    ]
    assert [m["to"] for m in expo_standin.messages] == [expo_token(3)]


def test_tokens_of_two_expo_projects_are_sent_per_project(
    expo: ExpoProvider, expo_standin: ExpoStandIn
) -> None:
    expo_standin.experience(expo_token(2), "@someone/other-app")
    results = expo.send([push(expo_token(i), f"d-{i}") for i in range(4)])
    assert {r.outcome for r in results} == {Outcome.SENT}
    statuses = [r.status for r in expo_standin.received]
    assert statuses == [400, 200, 200]


def test_receipts_say_delivered_or_why_not_and_omit_the_unready(
    expo: ExpoProvider, expo_standin: ExpoStandIn
) -> None:
    expo_standin.receipt_error(expo_token(2), "DeviceNotRegistered")
    expo_standin.receipt_error(expo_token(3), "MessageRateExceeded")
    expo_standin.hold_receipts(expo_token(4))
    sent = expo.send([push(expo_token(i), f"d-{i}") for i in range(1, 5)])
    tickets = [r.provider_message_id for r in sent]
    assert all(tickets)

    receipts = expo.check_receipts([t for t in tickets if t])

    assert receipts[tickets[0]].outcome is Outcome.SENT
    assert (receipts[tickets[1]].outcome, receipts[tickets[1]].error) == (
        Outcome.TOKEN_INVALID,
        "DeviceNotRegistered",
    )
    assert receipts[tickets[2]].outcome is Outcome.TRANSIENT
    assert tickets[3] not in receipts


def test_receipts_are_asked_for_in_chunks_of_1000(
    expo: ExpoProvider, expo_standin: ExpoStandIn
) -> None:
    assert expo.check_receipts([f"ticket-{i}" for i in range(2500)]) == {}
    sizes = [len(r.payload["ids"]) for r in expo_standin.received if r.path == RECEIPTS_PATH]
    assert sizes == [1000, 1000, 500]
    assert {r.status for r in expo_standin.received} == {200}


def test_nothing_logged_contains_a_token_or_a_body(
    expo: ExpoProvider, expo_standin: ExpoStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    expo_standin.ticket_error(expo_token(2), "DeviceNotRegistered")
    expo_standin.fail_requests(503, times=1)
    with caplog.at_level(logging.DEBUG):
        expo.send([push(expo_token(1), body="secret body words")])
        expo.send([push(expo_token(1), body="secret body words"), push(expo_token(2))])
    assert expo_token(1) not in caplog.text and expo_token(2) not in caplog.text
    assert "secret body words" not in caplog.text
