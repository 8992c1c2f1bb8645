"""pyfcm, google-auth and aiohttp, really, against the FCM v1 + OAuth stand-in: the message
FCM would receive, each error's outcome, one OAuth token for many messages, one attempt each,
a bounded number in flight over reused connections."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyfcm import FCMNotification

from core.catalog import Priority
from providers.base import Outcome
from providers.fcm import FCM_CONCURRENCY, FCMProvider, android_config, message_data
from tests.factories import fcm_token, push
from tests.standins._http import Reply, Request
from tests.standins.fcm import FCMStandIn
from tests.standins.fixtures import SettingsFactory
from tests.standins.keys import write_service_account

logger = logging.getLogger(__name__)


@pytest.fixture
def fcm(fcm_standin: FCMStandIn, provider_settings: SettingsFactory) -> Iterator[FCMProvider]:
    provider = FCMProvider(provider_settings(fcm_standin.client_env()))
    yield provider
    provider.close()


def test_message_reaches_fcm_in_v1_shape_with_string_data(
    fcm: FCMProvider, fcm_standin: FCMStandIn
) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=10)
    urgent = push(
        fcm_token(1),
        "d-1",
        data={"match_id": "m-42", "count": 3, "who": {"name": "Alex"}, "seen": False},
        priority=Priority.CRITICAL,
        collapse_key="conv:7",
        thread_id="conv-7",
        expires_at=expires,
        badge=2,
    )
    quiet = push(fcm_token(2), "d-2", priority=Priority.NORMAL, sound=None)

    results = fcm.send([urgent, quiet])

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    received = {r.token: r.message for r in fcm_standin.received}
    first = received[fcm_token(1)]
    assert first["notification"] == {"title": "New match", "body": "You and Alex liked each other"}
    assert first["data"] == {
        "match_id": "m-42",
        "count": "3",
        "who": json.dumps({"name": "Alex"}, separators=(",", ":")),
        "seen": "false",
        # expo-notifications' copy: the data as one JSON string
        "body": '{"match_id":"m-42","count":3,"who":{"name":"Alex"},"seen":false}',
    }
    android = first["android"]
    assert android["priority"] == "high"
    assert android["collapse_key"] == "conv:7"
    assert 598 <= int(android["ttl"].removesuffix("s")) <= 600
    assert android["notification"] == {"tag": "conv-7", "sound": "default", "notification_count": 2}
    second = received[fcm_token(2)]
    assert second["android"] == {"priority": "normal"}
    assert results[0].provider_message_id.startswith(f"projects/{fcm_standin.project_id}/messages/")


def test_one_oauth_token_serves_many_messages_and_sends(
    fcm: FCMProvider, fcm_standin: FCMStandIn
) -> None:
    fcm_standin.delay = 0.03
    first = fcm.send([push(fcm_token(i), f"a-{i}") for i in range(200)])
    second = fcm.send([push(fcm_token(i), f"b-{i}") for i in range(50)])
    assert {r.outcome for r in first + second} == {Outcome.SENT}
    assert fcm_standin.token_requests == 1
    assert fcm.token_fetches == 1
    # One keep-alive pool serves both batches (plus one connection for the OAuth request).
    assert fcm_standin.connections_opened <= FCM_CONCURRENCY + 1


@pytest.mark.parametrize(
    ("error_code", "outcome"),
    [
        ("UNREGISTERED", Outcome.TOKEN_INVALID),
        ("SENDER_ID_MISMATCH", Outcome.CREDENTIALS_ERROR),
        ("THIRD_PARTY_AUTH_ERROR", Outcome.CREDENTIALS_ERROR),
        ("INTERNAL", Outcome.TRANSIENT),
        ("INVALID_ARGUMENT", Outcome.PAYLOAD_ERROR),
    ],
)
def test_each_fcm_error_reaches_its_outcome(
    fcm: FCMProvider, fcm_standin: FCMStandIn, error_code: str, outcome: Outcome
) -> None:
    fcm_standin.respond(fcm_token(5), error_code)
    ok, failed = fcm.send([push(fcm_token(4), "ok"), push(fcm_token(5), "bad")])
    assert ok.outcome is Outcome.SENT
    assert (failed.ref, failed.outcome, failed.error) == ("bad", outcome, error_code)


def test_an_invalid_registration_token_is_token_invalid(
    fcm: FCMProvider, fcm_standin: FCMStandIn
) -> None:
    [result] = fcm.send([push("not-a-real-fcm-token")])  # the stand-in validates as FCM does
    assert (result.outcome, result.error) == (Outcome.TOKEN_INVALID, "INVALID_ARGUMENT")
    assert fcm_standin.received[0].status == 400


@pytest.mark.parametrize("error_code", ["UNAVAILABLE", "QUOTA_EXCEEDED"])
def test_retry_after_is_surfaced_and_not_slept_on(
    fcm: FCMProvider, fcm_standin: FCMStandIn, error_code: str
) -> None:
    tokens = [fcm_token(100 + i) for i in range(10)]
    for token in tokens:
        fcm_standin.respond(token, error_code, retry_after="30")
    started = time.monotonic()
    results = fcm.send([push(t, t) for t in tokens])
    elapsed = time.monotonic() - started
    assert {(r.outcome, r.error, r.retry_after) for r in results} == {
        (Outcome.TRANSIENT, error_code, 30.0)
    }
    assert len(fcm_standin.received) == len(tokens)  # one attempt each; pyfcm would loop
    assert elapsed < 5  # pyfcm would sleep 30 s per message


def test_too_big_or_reserved_messages_fail_without_a_request(
    fcm: FCMProvider, fcm_standin: FCMStandIn
) -> None:
    results = fcm.send(
        [
            push(fcm_token(1), "big", data={"blob": "x" * 4100}),
            push(fcm_token(2), "reserved", data={"google.delivered": "1"}),
            push(fcm_token(3), "fine"),
        ]
    )
    assert [(r.ref, r.outcome, r.error) for r in results] == [
        ("big", Outcome.PAYLOAD_ERROR, "MessageTooBig"),
        ("reserved", Outcome.PAYLOAD_ERROR, "ReservedDataKey"),
        ("fine", Outcome.SENT, None),
    ]
    assert [r.token for r in fcm_standin.received] == [fcm_token(3)]


def test_an_expired_access_token_is_transient_and_replaced_on_the_next_send(
    fcm: FCMProvider, fcm_standin: FCMStandIn
) -> None:
    assert fcm.send([push(fcm_token(1))])[0].outcome is Outcome.SENT
    fcm_standin.expire_access_tokens()
    [expired] = fcm.send([push(fcm_token(1))])
    assert (expired.outcome, expired.error) == (Outcome.TRANSIENT, "UNAUTHENTICATED")
    assert fcm.send([push(fcm_token(1))])[0].outcome is Outcome.SENT
    assert fcm_standin.token_requests == 2


def test_a_service_account_google_refuses_is_a_credentials_error(
    fcm_standin: FCMStandIn, provider_settings: SettingsFactory, tmp_path: Path
) -> None:
    impostor = tmp_path / "impostor.json"
    write_service_account(impostor, fcm_standin.project_id, fcm_standin.url + "/token")
    env = {**fcm_standin.client_env(), "FCM_SERVICE_ACCOUNT_FILE": str(impostor)}
    provider = FCMProvider(provider_settings(env))
    try:
        results = provider.send([push(fcm_token(1), "a"), push(fcm_token(2), "b")])
    finally:
        provider.close()
    assert {(r.outcome, r.error) for r in results} == {(Outcome.CREDENTIALS_ERROR, "OAuthRefused")}
    assert fcm_standin.received == []


def test_an_unreachable_oauth_endpoint_is_transient(
    fcm_standin: FCMStandIn, provider_settings: SettingsFactory, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/token"
    account = tmp_path / "account.json"
    write_service_account(account, fcm_standin.project_id, closed)
    env = {**fcm_standin.client_env(), "FCM_SERVICE_ACCOUNT_FILE": str(account)}
    provider = FCMProvider(provider_settings(env))
    try:
        started = time.monotonic()
        results = provider.send([push(fcm_token(1), "a"), push(fcm_token(2), "b")])
        elapsed = time.monotonic() - started
    finally:
        provider.close()
    assert {(r.outcome, r.error) for r in results} == {(Outcome.TRANSIENT, "OAuthUnavailable")}
    assert elapsed < 10


def test_an_unreachable_fcm_is_transient(
    fcm_standin: FCMStandIn, provider_settings: SettingsFactory
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    provider = FCMProvider(provider_settings(fcm_standin.client_env(), FCM_ENDPOINT=closed))
    try:
        results = provider.send([push(fcm_token(i), f"d-{i}") for i in range(5)])
    finally:
        provider.close()
    assert {(r.outcome, r.error) for r in results} == {(Outcome.TRANSIENT, "ConnectionError")}


def test_a_slow_fcm_times_out_as_transient(
    fcm_standin: FCMStandIn, provider_settings: SettingsFactory
) -> None:
    fcm_standin.delay = 1.5
    provider = FCMProvider(provider_settings(fcm_standin.client_env()), read_timeout=0.3)
    try:
        provider.send([])  # nothing to send: no request, no token
        [result] = provider.send([push(fcm_token(1))])
    finally:
        provider.close()
    assert (result.outcome, result.error) == (Outcome.TRANSIENT, "Timeout")


def test_200_messages_with_30ms_latency_go_out_in_parallel(
    fcm: FCMProvider, fcm_standin: FCMStandIn
) -> None:
    fcm_standin.delay = 0.03
    started = time.monotonic()
    results = fcm.send([push(fcm_token(i), f"d-{i}") for i in range(200)])
    elapsed = time.monotonic() - started
    logger.info("fcm 200 messages with 30 ms latency: %.3f s", elapsed)
    assert [r.ref for r in results] == [f"d-{i}" for i in range(200)]
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert elapsed < 10  # sequential would take 6 s


def test_nothing_logged_contains_a_token_or_a_body(
    fcm: FCMProvider, fcm_standin: FCMStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    fcm_standin.respond(fcm_token(2), "UNREGISTERED")
    with caplog.at_level(logging.DEBUG):
        fcm.send([push(fcm_token(1), body="secret body words"), push(fcm_token(2))])
    assert fcm_token(1) not in caplog.text and fcm_token(2) not in caplog.text
    assert "secret body words" not in caplog.text


class _RecordingFCMStandIn(FCMStandIn):
    """The FCM stand-in, also keeping each send's raw body and the headers that matter."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory)
        self.raw: list[tuple[str | None, str | None, bytes]] = []

    def handle(self, request: Request) -> Reply:
        if request.path.endswith("/messages:send"):
            with self._lock:
                self.raw.append(
                    (
                        request.headers.get("content-type"),
                        request.headers.get("authorization"),
                        request.body,
                    )
                )
        return super().handle(request)


def test_fcm_receives_exactly_the_bytes_pyfcm_built_with_json_and_bearer_headers(
    provider_settings: SettingsFactory, tmp_path: Path
) -> None:
    standin = _RecordingFCMStandIn(tmp_path).start()
    provider = FCMProvider(provider_settings(standin.client_env()))
    message = push(fcm_token(1), data={"count": 3, "text": "héllo"}, collapse_key="c")
    try:
        [result] = provider.send([message])
        pyfcm = FCMNotification(
            service_account_file=str(standin.service_account_file), project_id=standin.project_id
        )
        expected = pyfcm.parse_payload(
            fcm_token=message.token,
            notification_title=message.title,
            notification_body=message.body,
            data_payload=message_data(message),
            android_config=android_config(message),
        )
    finally:
        provider.close()
        standin.stop()
    assert result.outcome is Outcome.SENT
    [(content_type, authorization, body)] = standin.raw
    assert body == expected
    assert content_type == "application/json"
    assert authorization is not None and authorization.startswith("Bearer ya29.standin-")


def test_messages_in_flight_are_bounded_and_connections_reused_across_sends(
    fcm_standin: FCMStandIn, provider_settings: SettingsFactory
) -> None:
    fcm_standin.delay = 0.1
    provider = FCMProvider(provider_settings(fcm_standin.client_env()), max_in_flight=4)
    try:
        started = time.monotonic()
        batches = [provider.send([push(fcm_token(i), f"{b}-{i}") for i in range(8)]) for b in "abc"]
        elapsed = time.monotonic() - started
    finally:
        provider.close()
    assert {r.outcome for batch in batches for r in batch} == {Outcome.SENT}
    assert elapsed >= 3 * 2 * 0.1 * 0.9  # 8 messages, 4 at a time: two rounds per batch
    assert fcm_standin.connections_opened <= 4 + 1  # + the OAuth request's connection


def test_batches_sent_at_once_share_one_bound_per_process(
    fcm_standin: FCMStandIn, provider_settings: SettingsFactory
) -> None:
    fcm_standin.delay = 0.1
    provider = FCMProvider(provider_settings(fcm_standin.client_env()), max_in_flight=4)
    try:
        provider.send([push(fcm_token(0), "warm")])
        started = time.monotonic()
        with ThreadPoolExecutor(2) as jobs:
            batches = list(
                jobs.map(
                    lambda b: provider.send([push(fcm_token(i), f"{b}-{i}") for i in range(8)]),
                    "ab",
                )
            )
        elapsed = time.monotonic() - started
    finally:
        provider.close()
    assert [len(batch) for batch in batches] == [8, 8]
    assert {r.outcome for batch in batches for r in batch} == {Outcome.SENT}
    assert elapsed >= 4 * 0.1 * 0.9  # 16 messages, 4 at a time, whichever batch they are in
    assert fcm_standin.connections_opened <= 4 + 1


def test_a_forked_process_sends_on_its_own_loop_and_connections(
    fcm: FCMProvider, fcm_standin: FCMStandIn
) -> None:
    assert fcm.send([push(fcm_token(1), "parent")])[0].outcome is Outcome.SENT
    read_end, write_end = os.pipe()
    child = os.fork()  # as an RQ worker forks its work horse
    if child == 0:
        try:
            [result] = fcm.send([push(fcm_token(2), "child")])
            os.write(write_end, result.outcome.value.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child_outcome = pipe.read().decode()
    os.waitpid(child, 0)
    assert child_outcome == Outcome.SENT.value
    assert fcm.send([push(fcm_token(3), "parent-again")])[0].outcome is Outcome.SENT
    assert sorted(r.token for r in fcm_standin.received) == [fcm_token(i) for i in (1, 2, 3)]
