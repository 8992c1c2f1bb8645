"""The stand-ins themselves, over their real protocols: what the benchmark relies on (answers
that overlap while delayed, keep-alive, nothing kept when recording is off) and the APNs
provider-token rules, which hold whether a token's signature was checked now or earlier."""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import jwt
import pytest
import requests
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, ResponseReceived, StreamEnded

from tests.factories import apns_token, expo_token
from tests.standins import apns as apns_module
from tests.standins import expo as expo_module
from tests.standins.apns import JWT_MAX_AGE, APNsStandIn
from tests.standins.expo import RECEIPTS_PATH, SEND_PATH, ExpoStandIn
from tests.standins.keys import make_apns_key


def _provider_token(standin: APNsStandIn, issued_at: float, key_file: Path | None = None) -> str:
    return jwt.encode(
        {"iss": standin.team_id, "iat": int(issued_at)},
        (key_file or standin.key_file).read_text(),
        algorithm="ES256",
        headers={"kid": standin.key_id},
    )


def _push(standin: APNsStandIn, provider_token: str) -> tuple[int, str | None]:
    """One notification over a fresh TLS + HTTP/2 connection; (status, reason)."""
    context = ssl.create_default_context(cafile=str(standin.tls.ca_file))
    context.set_alpn_protocols(["h2"])
    conn = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    headers = [
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", standin.host),
        (":path", f"/3/device/{apns_token(1)}"),
        ("apns-topic", standin.topic),
        ("authorization", f"bearer {provider_token}"),
    ]
    conn.send_headers(1, headers)
    conn.send_data(1, b'{"aps": {"alert": "hello"}}', end_stream=True)
    status, body = 0, b""
    with (
        socket.create_connection((standin.host, standin.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=standin.host) as sock,
    ):
        sock.sendall(conn.data_to_send())
        while True:
            data = sock.recv(65536)
            assert data, "the stand-in closed the connection"
            for event in conn.receive_data(data):
                if isinstance(event, ResponseReceived):
                    status = int(dict(event.headers or [])[":status"])
                elif isinstance(event, DataReceived):
                    body += event.data or b""
                elif isinstance(event, StreamEnded):
                    return status, json.loads(body)["reason"] if body else None
            sock.sendall(conn.data_to_send())


def test_a_provider_token_is_accepted_again_until_it_is_an_hour_old(
    apns_standin: APNsStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    token = _provider_token(apns_standin, now)
    assert _push(apns_standin, token) == (200, None)
    assert _push(apns_standin, token) == (200, None)
    monkeypatch.setattr(apns_module, "time", SimpleNamespace(time=lambda: now + JWT_MAX_AGE + 5))
    assert _push(apns_standin, token) == (403, "ExpiredProviderToken")
    assert _push(apns_standin, token) == (403, "ExpiredProviderToken")


def test_a_provider_token_older_than_an_hour_is_refused_every_time(
    apns_standin: APNsStandIn,
) -> None:
    token = _provider_token(apns_standin, time.time() - JWT_MAX_AGE - 60)
    assert _push(apns_standin, token) == (403, "ExpiredProviderToken")
    assert _push(apns_standin, token) == (403, "ExpiredProviderToken")


def test_a_provider_token_signed_with_another_key_is_refused_every_time(
    apns_standin: APNsStandIn, tmp_path: Path
) -> None:
    other_key = tmp_path / "AuthKey_OTHER.p8"
    make_apns_key(other_key)
    token = _provider_token(apns_standin, time.time(), other_key)
    assert _push(apns_standin, token) == (403, "InvalidProviderToken")
    assert _push(apns_standin, token) == (403, "InvalidProviderToken")
    assert _push(apns_standin, _provider_token(apns_standin, time.time())) == (200, None)


def test_apns_keeps_nothing_when_recording_is_off(apns_standin: APNsStandIn) -> None:
    apns_standin.record = False
    try:
        assert _push(apns_standin, _provider_token(apns_standin, time.time())) == (200, None)
    finally:
        apns_standin.record = True
    assert apns_standin.received == []
    assert apns_standin.connections_opened == 1


def _messages(first: int, count: int) -> list[dict[str, str]]:
    return [{"to": expo_token(n), "body": "hi"} for n in range(first, first + count)]


def test_delayed_answers_overlap_and_share_keep_alive_connections(
    expo_standin: ExpoStandIn,
) -> None:
    expo_standin.delay = 0.2
    with requests.Session() as session:
        session.post(expo_standin.url + SEND_PATH, json=_messages(0, 1)).raise_for_status()
    started = time.monotonic()
    with ThreadPoolExecutor(10) as pool:
        answers = list(
            pool.map(
                lambda n: requests.post(expo_standin.url + SEND_PATH, json=_messages(n, 1)),
                range(10),
            )
        )
    assert time.monotonic() - started < 1.0  # ten answers of 0.2 s each, side by side
    assert {answer.status_code for answer in answers} == {200}
    with requests.Session() as session:
        for n in range(3):
            session.post(expo_standin.url + SEND_PATH, json=_messages(n, 1)).raise_for_status()
    assert expo_standin.connections_opened == 1 + 10 + 1


def test_a_gzip_request_body_is_read_as_expo_reads_it(expo_standin: ExpoStandIn) -> None:
    answer = requests.post(
        expo_standin.url + SEND_PATH,
        data=gzip.compress(json.dumps(_messages(0, 3)).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 200
    assert [m["to"] for m in expo_standin.messages] == [expo_token(n) for n in range(3)]
    not_gzip = requests.post(
        expo_standin.url + SEND_PATH,
        data=json.dumps(_messages(0, 1)).encode(),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert not_gzip.status_code == 400


def test_expo_forgets_the_oldest_tickets_beyond_its_bound(
    expo_standin: ExpoStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expo_module, "MAX_TICKETS", 3)
    expo_standin.record = False
    try:
        tickets = requests.post(expo_standin.url + SEND_PATH, json=_messages(0, 5)).json()["data"]
        ids = [ticket["id"] for ticket in tickets]
        receipts = requests.post(expo_standin.url + RECEIPTS_PATH, json={"ids": ids}).json()
    finally:
        expo_standin.record = True
    assert len(set(ids)) == 5
    assert sorted(receipts["data"]) == sorted(ids[2:])
    assert expo_standin.received == []
