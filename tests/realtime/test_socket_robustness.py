"""Bad input and bad moments on the socket (issue #10, point 7), against real gateways.

- A payload nested more than MAX_JSON_DEPTH levels deep, on any client event (and even one
  too deep for the JSON parser to recurse into), gets an `error` event `invalid_payload`
  with `details.max_depth`; so does a value PostgreSQL could not store (NaN, U+0000, a lone
  surrogate). The connection lives on.
- PostgreSQL or Redis down (a TCP proxy the test stops: tests/tcp_proxy.py) gets an
  `error` event `unavailable` naming the dependency, and a connect meanwhile is refused
  with a connect_error saying the same; once it is back, the same events succeed.

Payloads too deep for python-socketio's own encoder are sent as raw Socket.IO packets.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import socketio
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from api.requests import MAX_JSON_DEPTH
from core.catalog import ClientEvent
from models.activity import UserActivity
from tests.realtime.conftest import realtime_env
from tests.realtime.harness import Client, Gateway
from tests.tcp_proxy import TcpProxy
from tests.waiting import wait_until

EVENTS = [event.value for event in ClientEvent]


def nested(depth: int, kind: str = "array") -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "{}" + "}" * depth


def send_raw(client: Client, event: str, payload_json: str) -> None:
    """An EVENT packet written by hand: `2["event",<payload>]`."""
    client.sio.eio.send(f"2[{json.dumps(event)},{payload_json}]")


def depth_error(event: str) -> Callable[[Any], bool]:
    return lambda error: (
        error.get("event") == event and error["details"].get("max_depth") == MAX_JSON_DEPTH
    )


TOO_DEEP = {
    "arrays, 5000 deep": nested(5000),
    "objects, 5000 deep": nested(4999, "object"),
    "in a field, 5000 deep": '{"conversation_id": "c", "user_ids": ' + nested(4999) + "}",
    "in a field, 900 deep": '{"conversation_id": "c", "metadata": ' + nested(899, "object") + "}",
    "one over the limit": '{"conversation_id": "c", "x": ' + nested(MAX_JSON_DEPTH) + "}",
}


@pytest.mark.parametrize("name", list(TOO_DEEP))
def test_a_payload_nested_too_deeply_is_invalid_on_every_event(
    gateway, clients, token, users, name
):
    (alice,) = users(1)
    me = clients(gateway, token(alice))
    for event in EVENTS:
        send_raw(me, event, TOO_DEEP[name])
        error = me.wait_for("error", depth_error(event))
        assert error["code"] == "invalid_payload"
        assert str(MAX_JSON_DEPTH) in error["message"]
    assert me.call("heartbeat", {})["ok"] is True


def test_a_packet_too_deep_to_name_its_event_is_dropped_and_the_connection_lives_on(
    gateway, clients, token, users
):
    (alice,) = users(1)
    me = clients(gateway, token(alice))
    me.sio.eio.send("2" + nested(5000))  # no event name the gateway could answer to
    seen = me.barrier()
    assert me.received("error", before=seen) == []
    assert me.sio.connected


def test_nesting_up_to_the_limit_is_not_refused_for_its_depth(gateway, clients, token, users):
    (alice,) = users(1)
    me = clients(gateway, token(alice))
    deep: Any = []
    for _ in range(MAX_JSON_DEPTH - 2):
        deep = [deep]
    for event in EVENTS:
        answer = me.call(event, {"conversation_id": "c", "x": deep})  # 32 levels in all
        if not answer.get("ok"):
            assert "max_depth" not in answer["error"]["details"], (event, answer)
    assert me.sio.connected


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("NaN", "metadata.score"),
        ("-Infinity", "metadata.score"),
        ('"a\\u0000b"', "metadata.score"),
        ('"\\ud800"', "metadata.score"),
    ],
    ids=["nan", "infinity", "nul", "lone-surrogate"],
)
def test_a_value_postgresql_cannot_store_is_invalid_and_writes_nothing(
    gateway, clients, token, users, db_session, value, field
):
    (alice,) = users(1)
    me = clients(gateway, token(alice))
    send_raw(me, "activity", '{"activity_type": "swipe", "metadata": {"score": ' + value + "}}")
    error = me.wait_for("error", lambda e: e.get("event") == "activity")
    assert error["code"] == "invalid_payload"
    assert field in error["details"]["fields"]
    assert me.call("heartbeat", {})["ok"] is True
    stored = db_session.scalar(
        select(func.count()).select_from(UserActivity).where(UserActivity.user_id == alice)
    )
    assert stored == 0


# --- a dependency down ------------------------------------------------------------------


@pytest.fixture
def proxies(database_url: str, redis_url: str) -> Iterator[tuple[TcpProxy, TcpProxy]]:
    pg = make_url(database_url)
    rd = urlsplit(redis_url)
    with (
        TcpProxy(pg.host or "127.0.0.1", pg.port or 5432) as postgresql,
        TcpProxy(rd.hostname or "127.0.0.1", rd.port or 6379) as redis_proxy,
    ):
        yield postgresql, redis_proxy


@pytest.fixture
def proxied_gateway(
    database_url: str, redis_url: str, proxies: tuple[TcpProxy, TcpProxy], realtime_logs: Path
) -> Iterator[Gateway]:
    """A gateway of this test's own whose PostgreSQL and Redis go through the proxies."""
    postgresql, redis_proxy = proxies
    env = realtime_env(
        postgresql.url_for(database_url),
        redis_proxy.url_for(redis_url),
        REDIS_KEY_PREFIX=f"pulse-outage-{uuid.uuid4().hex[:6]}:",
    )
    process = Gateway(f"outage-gateway-{uuid.uuid4().hex[:6]}", env, realtime_logs)
    yield process
    postgresql.start()
    redis_proxy.start()
    process.stop()


def unavailable(dependency: str) -> Callable[[Any], bool]:
    return lambda error: (
        error.get("code") == "unavailable" and error["details"].get("dependency") == dependency
    )


def test_a_dependency_down_is_an_unavailable_error_and_comes_back(
    proxied_gateway, proxies, clients, token, users
):
    postgresql, redis_proxy = proxies
    alice, bob = users(2)
    me = clients(proxied_gateway, token(alice))

    # Redis down: a heartbeat cannot be recorded.
    redis_proxy.stop()
    answer = me.call("heartbeat", {}, timeout=20)
    assert answer["ok"] is False
    assert unavailable("redis")(answer["error"]), answer
    error = me.wait_for("error", unavailable("redis"))
    assert error["event"] == "heartbeat"
    assert "Redis" in error["message"] and error["details"]["retry_after_ms"] > 0
    redis_proxy.start()
    wait_until(lambda: me.call("heartbeat", {}, timeout=20)["ok"], timeout=20)

    # PostgreSQL down: an activity cannot be stored, and a new connection cannot be made.
    postgresql.stop()
    answer = me.call("activity", {"activity_type": "swipe"}, timeout=20)
    assert answer["ok"] is False
    assert unavailable("postgresql")(answer["error"]), answer
    assert "PostgreSQL" in me.wait_for("error", unavailable("postgresql"))["message"]
    late = clients(proxied_gateway, token(bob), connect=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        late.connect()
    assert late.connect_error["data"]["code"] == "unavailable"
    assert late.connect_error["data"]["dependency"] == "postgresql"
    assert "PostgreSQL" in late.connect_error["message"]
    postgresql.start()
    wait_until(lambda: me.call("activity", {"activity_type": "swipe"}, timeout=20)["ok"], 20)
    again = clients(proxied_gateway, token(bob))
    assert again.call("heartbeat", {})["ok"] is True
    assert me.sio.connected
