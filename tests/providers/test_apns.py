"""aioapns, really, against the HTTP/2 + TLS APNs stand-in: what Apple would receive, what
each answer becomes, and that the connection is shared, concurrent and bounded."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from core.catalog import Priority
from providers.apns import APNsProvider
from providers.apns_transport import RecentlyClosedH2Connection
from providers.base import Outcome
from tests.factories import apns_token, push
from tests.standins.apns import APNsRequest, APNsStandIn
from tests.standins.fixtures import SettingsFactory
from tests.standins.keys import make_apns_key
from tests.waiting import wait_until

logger = logging.getLogger(__name__)


@pytest.fixture
def apns(apns_standin: APNsStandIn, provider_settings: SettingsFactory) -> Iterator[APNsProvider]:
    provider = APNsProvider(provider_settings(apns_standin.client_env()))
    yield provider
    provider.close()


def test_alert_reaches_apns_with_apple_headers_and_payload(
    apns: APNsProvider, apns_standin: APNsStandIn
) -> None:
    expires = datetime.now(UTC) + timedelta(hours=1)
    urgent = push(
        apns_token(1),
        "d-1",
        priority=Priority.HIGH,
        collapse_key="conv:7",
        thread_id="conv-7",
        expires_at=expires,
        badge=3,
    )
    quiet = push(apns_token(2), "d-2", priority=Priority.LOW, sound=None)

    results = apns.send([urgent, quiet])

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    first, second = sorted(apns_standin.received, key=lambda r: r.token)
    assert first.token == apns_token(1)
    assert first.headers["apns-priority"] == "10"
    assert first.headers["apns-push-type"] == "alert"
    assert first.headers["apns-topic"] == apns_standin.topic
    assert first.headers["apns-collapse-id"] == "conv:7"
    assert abs(int(first.headers["apns-expiration"]) - expires.timestamp()) <= 2
    assert results[0].provider_message_id == first.headers["apns-id"]
    assert first.payload == {
        "aps": {
            "alert": {"title": "New match", "body": "You and Alex liked each other"},
            "sound": "default",
            "badge": 3,
            "thread-id": "conv-7",
        },
        "type": "new_match",
        "match_id": "m-42",
        "body": {"type": "new_match", "match_id": "m-42"},  # expo-notifications' copy
    }
    assert second.headers["apns-priority"] == "5"
    assert "apns-expiration" not in second.headers  # APNs keeps and retries by its own policy
    assert "apns-collapse-id" not in second.headers
    assert "sound" not in second.payload["aps"]
    assert all(r.latency_ms is not None for r in results)


def test_long_collapse_key_is_sent_as_a_64_byte_id(
    apns: APNsProvider, apns_standin: APNsStandIn
) -> None:
    [result] = apns.send([push(apns_token(1), collapse_key="batch:" + "x" * 100)])
    assert result.outcome is Outcome.SENT
    assert len(apns_standin.received[0].headers["apns-collapse-id"].encode()) == 64


def test_unregistered_token_is_invalid_since_apples_timestamp(
    apns: APNsProvider, apns_standin: APNsStandIn
) -> None:
    apns_standin.respond(apns_token(9), 410, "Unregistered", timestamp_ms=1_700_000_000_000)
    [result] = apns.send([push(apns_token(9))])
    assert result.outcome is Outcome.TOKEN_INVALID
    assert result.error == "Unregistered"
    assert result.token_invalid_since == datetime.fromtimestamp(1_700_000_000, UTC)


@pytest.mark.parametrize(
    ("status", "reason", "outcome", "mismatch"),
    [
        (400, "BadDeviceToken", Outcome.TOKEN_INVALID, True),
        (400, "DeviceTokenNotForTopic", Outcome.TOKEN_INVALID, False),
        (413, "PayloadTooLarge", Outcome.PAYLOAD_ERROR, False),
        (400, "BadExpirationDate", Outcome.PAYLOAD_ERROR, False),
        (429, "TooManyRequests", Outcome.TRANSIENT, False),
        (500, "InternalServerError", Outcome.TRANSIENT, False),
        (503, "ServiceUnavailable", Outcome.TRANSIENT, False),
    ],
)
def test_each_apns_error_reaches_its_outcome(
    apns: APNsProvider,
    apns_standin: APNsStandIn,
    status: int,
    reason: str,
    outcome: Outcome,
    mismatch: bool,
) -> None:
    apns_standin.respond(apns_token(5), status, reason)
    ok, failed = apns.send([push(apns_token(4), "ok"), push(apns_token(5), "bad")])
    assert ok.outcome is Outcome.SENT
    assert (failed.ref, failed.outcome, failed.error) == ("bad", outcome, reason)
    assert failed.environment_mismatch is mismatch


def test_a_key_apple_does_not_know_is_a_credentials_error(
    apns_standin: APNsStandIn, provider_settings: SettingsFactory, tmp_path: Path
) -> None:
    other_key = tmp_path / "AuthKey_OTHER.p8"
    make_apns_key(other_key)
    env = {**apns_standin.client_env(), "APPLE_PUSH_KEY_FILE": str(other_key)}
    provider = APNsProvider(provider_settings(env))
    try:
        [result] = provider.send([push(apns_token(1))])
    finally:
        provider.close()
    assert (result.outcome, result.error) == (Outcome.CREDENTIALS_ERROR, "InvalidProviderToken")


def test_a_topic_apple_does_not_know_is_a_credentials_error(
    apns_standin: APNsStandIn, provider_settings: SettingsFactory
) -> None:
    env = {**apns_standin.client_env(), "APNS_TOPIC": "com.example.other"}
    provider = APNsProvider(provider_settings(env))
    try:
        [result] = provider.send([push(apns_token(1))])
    finally:
        provider.close()
    assert (result.outcome, result.error) == (Outcome.CREDENTIALS_ERROR, "BadTopic")


def test_oversized_or_reserved_payloads_fail_without_a_request(
    apns: APNsProvider, apns_standin: APNsStandIn
) -> None:
    too_big = push(apns_token(1), "big", data={"blob": "x" * 5000})
    reserved = push(apns_token(2), "aps", data={"aps": {"badge": 1}})
    fine = push(apns_token(3), "fine")
    results = apns.send([too_big, reserved, fine])
    assert [(r.ref, r.outcome) for r in results] == [
        ("big", Outcome.PAYLOAD_ERROR),
        ("aps", Outcome.PAYLOAD_ERROR),
        ("fine", Outcome.SENT),
    ]
    assert results[0].error == "PayloadTooLarge"
    assert [r.token for r in apns_standin.received] == [apns_token(3)]


def test_a_failing_apns_gets_one_attempt_per_message_and_no_retry_loop(
    apns: APNsProvider, apns_standin: APNsStandIn
) -> None:
    tokens = [apns_token(100 + i) for i in range(20)]
    for token in tokens:
        apns_standin.respond(token, 503, "ServiceUnavailable")
    started = time.monotonic()
    results = apns.send([push(t, f"d-{i}") for i, t in enumerate(tokens)])
    elapsed = time.monotonic() - started
    assert {r.outcome for r in results} == {Outcome.TRANSIENT}
    assert len(apns_standin.received) == len(tokens)
    assert elapsed < 5


def test_fail_n_times_then_succeed_is_left_to_the_caller_s_next_attempt(
    apns: APNsProvider, apns_standin: APNsStandIn
) -> None:
    apns_standin.respond(apns_token(7), 503, "ServiceUnavailable", times=1)
    assert apns.send([push(apns_token(7))])[0].outcome is Outcome.TRANSIENT
    assert apns.send([push(apns_token(7))])[0].outcome is Outcome.SENT
    assert len(apns_standin.received) == 2


def test_the_http2_connection_is_reused_across_sends(
    apns: APNsProvider, apns_standin: APNsStandIn
) -> None:
    apns.send([push(apns_token(i), f"a-{i}") for i in range(50)])
    apns.send([push(apns_token(i), f"b-{i}") for i in range(50)])
    assert len(apns_standin.received) == 100
    assert apns_standin.connections_opened == 1
    assert {r.connection for r in apns_standin.received} == {1}


class FakeClock:
    """A time.time() that moves only when the test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def issued_at(request: APNsRequest) -> int:
    token = request.headers["authorization"].removeprefix("bearer ")
    return jwt.decode(token, options={"verify_signature": False})["iat"]


@pytest.fixture
def clocked_apns(
    apns_standin: APNsStandIn, provider_settings: SettingsFactory
) -> Iterator[tuple[APNsProvider, FakeClock]]:
    # Started 40 minutes ago: a token signed at any moment of the tests below is one the
    # stand-in takes (Apple: not older than an hour, not from the future).
    clock = FakeClock(float(int(time.time()) - 40 * 60))
    provider = APNsProvider(provider_settings(apns_standin.client_env()), clock=clock)
    yield provider, clock
    provider.close()


def test_a_new_connection_presents_the_same_provider_token(
    clocked_apns: tuple[APNsProvider, FakeClock], apns_standin: APNsStandIn
) -> None:
    apns, clock = clocked_apns
    apns.send([push(apns_token(1), "before")])
    apns_standin.drop_connections()  # APNs recycles connections; the client must reconnect
    # Until the client has seen the GOAWAY, a send would race it (a transient error).
    assert apns._running is not None
    pool = apns._running.client.pool
    wait_until(lambda: not pool.connections, timeout=5)
    clock.advance(10 * 60)  # a freshly signed JWT would now carry a different iat
    [result] = apns.send([push(apns_token(2), "after")])
    assert result.outcome is Outcome.SENT
    before, after = apns_standin.received
    assert (before.connection, after.connection) == (1, 2)
    # Re-signing per connection would earn 429 TooManyProviderTokenUpdates from Apple.
    assert before.headers["authorization"] == after.headers["authorization"]


def test_the_provider_token_is_signed_again_once_30_minutes_old(
    clocked_apns: tuple[APNsProvider, FakeClock], apns_standin: APNsStandIn
) -> None:
    apns, clock = clocked_apns
    started = int(clock())
    apns.send([push(apns_token(1), "fresh")])
    clock.advance(30 * 60)  # exactly TOKEN_TTL: still the same token
    apns.send([push(apns_token(2), "same")])
    clock.advance(1)
    [result] = apns.send([push(apns_token(3), "renewed")])
    assert result.outcome is Outcome.SENT
    renewed = started + 30 * 60 + 1
    assert [issued_at(r) for r in apns_standin.received] == [started, started, renewed]
    assert apns_standin.connections_opened == 1


def test_500_messages_travel_as_concurrent_streams(
    apns: APNsProvider, apns_standin: APNsStandIn
) -> None:
    apns_standin.delay = 0.03  # realistic APNs latency, applied per stream
    messages = [push(apns_token(i), f"d-{i}") for i in range(500)]
    started = time.monotonic()
    results = apns.send(messages)
    elapsed = time.monotonic() - started
    logger.info("apns 500 messages with 30 ms latency: %.3f s", elapsed)
    assert [r.ref for r in results] == [m.ref for m in messages]
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert apns_standin.max_concurrent_seen > 10
    assert apns_standin.connections_opened == 1
    assert elapsed < 10  # 500 sequential round trips would take 15 s


def test_batches_sent_at_once_from_several_threads_share_the_http2_window(
    apns: APNsProvider, apns_standin: APNsStandIn
) -> None:
    # A delivery job sends its parts at once; 8 batches of 3 KB payloads are far more than
    # one connection's 64 KiB window, which all batches share.
    apns_standin.delay = 0.03
    body = "x" * 3000
    batches = [
        [push(apns_token(part * 100 + i), f"p{part}-{i}", body=body) for i in range(40)]
        for part in range(8)
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [r for batch in pool.map(apns.send, batches) for r in batch]
    assert len(results) == 320
    assert {(r.outcome, r.error) for r in results} == {(Outcome.SENT, None)}


def test_a_long_lived_connection_remembers_a_bounded_number_of_closed_streams(
    apns: APNsProvider, apns_standin: APNsStandIn
) -> None:
    # h2's default (65,536 per connection) was 7 MiB of worker memory per APNs connection.
    for batch in range(5):
        results = apns.send([push(apns_token(batch * 1000 + i), str(i)) for i in range(1000)])
        assert {r.outcome for r in results} == {Outcome.SENT}
    [connection] = apns._running.client.pool.connections
    assert len(connection.conn._closed_streams) <= RecentlyClosedH2Connection.MAX_CLOSED_STREAMS
    assert RecentlyClosedH2Connection.MAX_CLOSED_STREAMS < 5000


def test_error_bodies_keep_flowing_past_the_http2_window(
    apns: APNsProvider, apns_standin: APNsStandIn
) -> None:
    # ~36-byte error bodies: 2000 of them exceed the 64 KiB window a client must hand back.
    tokens = [apns_token(10_000 + i) for i in range(2000)]
    for token in tokens:
        apns_standin.respond(token, 400, "DeviceTokenNotForTopic")
    for half in (tokens[:1000], tokens[1000:]):
        results = apns.send([push(t, t) for t in half])
        assert {r.outcome for r in results} == {Outcome.TOKEN_INVALID}
    assert apns_standin.connections_opened == 1


def test_a_slow_apns_times_out_as_transient(
    apns_standin: APNsStandIn, provider_settings: SettingsFactory
) -> None:
    apns_standin.delay = 2.0
    provider = APNsProvider(provider_settings(apns_standin.client_env()), request_timeout=0.3)
    try:
        started = time.monotonic()
        [result] = provider.send([push(apns_token(1))])
        elapsed = time.monotonic() - started
    finally:
        provider.close()
    assert (result.outcome, result.error) == (Outcome.TRANSIENT, "Timeout")
    assert elapsed < 1.5


def test_an_unreachable_apns_fails_fast_as_transient(
    apns_standin: APNsStandIn, provider_settings: SettingsFactory
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    env = {**apns_standin.client_env(), "APNS_PORT": str(closed_port)}
    provider = APNsProvider(provider_settings(env))
    try:
        started = time.monotonic()
        results = provider.send([push(apns_token(i), f"d-{i}") for i in range(50)])
        elapsed = time.monotonic() - started
    finally:
        provider.close()
    assert {(r.outcome, r.error) for r in results} == {(Outcome.TRANSIENT, "ConnectionError")}
    assert elapsed < 5


def test_nothing_logged_contains_a_token_or_a_body(
    apns: APNsProvider, apns_standin: APNsStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    apns_standin.respond(apns_token(2), 410, "Unregistered", timestamp_ms=1)
    with caplog.at_level(logging.DEBUG):
        apns.send([push(apns_token(1), body="secret body words"), push(apns_token(2))])
    assert apns_token(1) not in caplog.text and apns_token(2) not in caplog.text
    assert "secret body words" not in caplog.text
