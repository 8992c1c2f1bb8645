"""Several gateway processes and a worker on one Redis message queue: a user on gateway 1
sees the presence and typing of a user on gateway 2, and an event the worker emits; a
gateway that dies has its connections swept by another after the TTL."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import keys
from core.catalog import Role
from core.config import load_settings
from tests.realtime.conftest import realtime_env
from tests.realtime.harness import Gateway, Process, bulk_has, start_worker


@pytest.fixture(scope="module")
def cluster(database_url, redis_url, realtime_logs: Path) -> Iterator[dict[str, Process]]:
    env = realtime_env(database_url, redis_url)
    nodes: dict[str, Process] = {}
    try:
        nodes["gateway1"] = Gateway("node-1", env, realtime_logs)
        nodes["gateway2"] = Gateway("node-2", env, realtime_logs)
        nodes["worker"] = start_worker("node-worker", env, realtime_logs)
        yield nodes
    finally:
        for process in nodes.values():
            process.stop()


def test_presence_and_typing_cross_gateways(cluster, clients, token, users, match):
    alice, bob = users(2)
    conversation = match(alice, bob)
    watcher = clients(cluster["gateway1"], token(bob))
    watcher.call("presence_subscribe", {"user_ids": [alice]})
    typist = clients(cluster["gateway2"], token(alice))

    watcher.wait_for(
        "user_presence_update", lambda d: d["user_id"] == alice and d["status"] == "online"
    )
    typist.call("presence_update", {"status": "busy"})
    watcher.wait_for("user_presence_update", lambda d: d["status"] == "busy")
    typist.call("typing_start", {"conversation_id": conversation})
    assert watcher.wait_for("typing_start")["user_id"] == alice
    typist.call(
        "typing_progress", {"conversation_id": conversation, "char_count": 4, "duration_ms": 800}
    )
    assert watcher.wait_for("typing_progress")["char_count"] == 4


def test_an_event_emitted_by_the_worker_reaches_a_client_on_either_gateway(
    cluster, clients, token, users, client, auth_header
):
    (alice,) = users(1)
    on_one = clients(cluster["gateway1"], token(alice), device_id="phone")
    on_two = clients(cluster["gateway2"], token(alice), device_id="tablet")
    response = client.post(
        "/api/v1/realtime/events",
        json={
            "event_type": "conversation_started",
            "target_user_id": alice,
            "payload": {"conversation_id": "c-1"},
        },
        headers=auth_header("chat-service", Role.SERVICE),
    )
    assert response.status_code == 202
    for device in (on_one, on_two):
        assert device.wait_for("conversation_started", timeout=10)["payload"] == {
            "conversation_id": "c-1"
        }


def test_connections_of_a_dead_gateway_are_swept_by_another(
    database_url, redis_url, realtime_logs, cluster, clients, token, users, client, auth_header
):
    alice, bob = users(2)
    doomed = Gateway("node-doomed", realtime_env(database_url, redis_url), realtime_logs)
    try:
        watcher = clients(cluster["gateway1"], token(bob))
        clients(doomed, token(alice))
        watcher.call("presence_subscribe", {"user_ids": [alice]})
        watcher.wait_for("presence_bulk_update", bulk_has(alice, "online"))
        doomed.stop(signal.SIGKILL)
        # REALTIME_CONNECTION_TTL_SECONDS=6: the record expires, gateway 1's sweep closes it.
        away = watcher.wait_for(
            "user_presence_update", lambda d: d["user_id"] == alice and d["status"] == "away", 12
        )
        assert away["last_seen"] is not None
        status = client.get("/api/v1/realtime/status", headers=auth_header(alice)).json["data"]
        assert status["websocket_connected"] is False
    finally:
        doomed.stop()


def test_a_gateway_stopped_with_sigterm_closes_its_connections_at_once_and_leaves(
    database_url, redis_url, realtime_logs, cluster, clients, token, users, redis_client
):
    alice, bob = users(2)
    env = realtime_env(database_url, redis_url)
    gateways_key = keys.rt_gateways(load_settings(env).storage.redis_key_prefix)
    leaving = Gateway("node-leaving", env, realtime_logs)
    try:
        watcher = clients(cluster["gateway1"], token(bob))
        clients(leaving, token(alice))
        watcher.call("presence_subscribe", {"user_ids": [alice]})
        watcher.wait_for("presence_bulk_update", bulk_has(alice, "online"))
        node = f"{socket.gethostname()}-{leaving.proc.pid}"
        assert redis_client.zscore(gateways_key, node) is not None

        leaving.stop(signal.SIGTERM)

        # No TTL to wait for (6 s): the leaving gateway closes alice's connection itself.
        away = watcher.wait_for(
            "user_presence_update", lambda d: d["user_id"] == alice and d["status"] == "away", 3
        )
        assert away["last_seen"] is not None
        assert redis_client.zscore(gateways_key, node) is None
    finally:
        leaving.stop()
