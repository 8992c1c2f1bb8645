"""REDIS_URL with a password (the default user's, or an ACL user's) and with TLS (`rediss://`
with redis-py's ssl_* parameters: a CA of its own, a client certificate): the API (a send,
a rate-limited endpoint, /readyz), a burst RQ worker delivering the send, the Socket.IO
message queue (the worker's external emitter reaching a socket on a gateway process) and
rq-dashboard all work through the one URL; a wrong one stops each process at start-up,
naming REDIS_URL without its password.

Each scenario runs against a throwaway redis-server of its own (tests/redis_servers.py).
TLS needs a redis-server built with TLS; without one those tests are skipped, saying why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runtime as worker_runtime
from api import create_app
from api.auth import mint_token
from core import keys
from core.catalog import Role
from core.config import load_settings
from intake.queues import make_worker
from stores.access import RedisAccessError, check_access, redacted
from tests.conftest import _truncate_all
from tests.factories import NO_QUIET_HOURS, expo_token
from tests.procfile import Dashboard
from tests.realtime.conftest import realtime_env
from tests.realtime.harness import ROOT, Client, Gateway
from tests.redis_servers import (
    ACL_PASSWORD,
    ACL_USER,
    PASSWORD,
    Certificates,
    RedisServer,
    any_binary,
    make_certificates,
    tls_binary,
)

REGISTER = "/api/v1/notifications/register-token"
REGISTER_LIMIT = 10  # an hour per user (api/notifications/tokens.py)


@pytest.fixture(scope="module")
def password_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(
        any_binary(), tmp_path_factory.mktemp("redis-password"), password=PASSWORD
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("redis-certs"))


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates
) -> Iterator[RedisServer]:
    binary, why = tls_binary(tmp_path_factory.mktemp("redis-tls-probe"))
    if binary is None:
        pytest.skip(f"TLS NOT TESTED: {why}; install one, e.g. `apt-get install redis-server`")
    server = RedisServer(
        binary, tmp_path_factory.mktemp("redis-tls"), password=PASSWORD, tls=certificates
    ).start()
    yield server
    server.stop()


@pytest.fixture(params=["password", "acl-user", "tls"])
def secured_url(request: pytest.FixtureRequest) -> str:
    """The URL of a scenario's server, emptied for the test."""
    server: RedisServer = request.getfixturevalue(
        "tls_server" if request.param == "tls" else "password_server"
    )
    server.admin().flushall()
    if request.param == "tls":
        return server.url(tls=request.getfixturevalue("certificates"))
    if request.param == "acl-user":
        return server.url(ACL_USER, ACL_PASSWORD)
    return server.url()


def bearer(settings: Any, user_id: str, role: Role = Role.USER) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, user_id, role)}"}


@pytest.mark.slow
def test_the_api_a_worker_socketio_and_rq_dashboard_work_through_it(
    secured_url, database_url, tmp_path
):
    env = realtime_env(database_url, secured_url, PULSE_ENV="development", **NO_QUIET_HOURS)
    settings = load_settings(env)
    gateway = Gateway("secured-gateway", env, tmp_path)
    app = create_app(settings)
    runtime = worker_runtime.configure(settings)
    http = app.test_client()
    run = uuid.uuid4().hex[:8]
    alice, bob, carol = (f"{name}-{run}" for name in ("alice", "bob", "carol"))
    socket = Client(gateway.url, mint_token(settings, alice))
    try:
        socket.connect()  # alice has the app open: her copy goes in-app, through the queue
        for n, user in enumerate((alice, bob)):
            response = http.post(
                REGISTER,
                json={"token": expo_token(n), "platform": "ios"},
                headers=bearer(settings, user),
            )
            assert response.status_code == 201, response.json
        # The rate limits are counted in this Redis: they do not fail open.
        statuses = [
            http.post(
                REGISTER,
                json={"token": expo_token(9), "platform": "ios"},
                headers=bearer(settings, carol),
            ).status_code
            for _ in range(REGISTER_LIMIT + 1)
        ]
        assert statuses[-1] == 429 and 429 not in statuses[:-1], statuses
        response = http.post(
            "/api/v1/notifications/send",
            json={
                "notification_type": "new_message",
                "target": {"user_ids": [alice, bob]},
                "data": {"sender_name": "Alex", "message_preview": "Hey!"},
            },
            headers=bearer(settings, "chat", Role.SERVICE),
        )
        assert response.status_code in (200, 201, 202), response.json
        alice_id, bob_id = response.json["data"]["notification_ids"]

        make_worker(runtime.redis).work(burst=True)

        in_app = socket.wait_for("notification", timeout=10)
        assert in_app["id"] == alice_id
        admin = bearer(settings, "ops", Role.ADMIN)
        bob_state = http.get(f"/api/v1/notifications/{bob_id}", headers=admin).json["data"]
        assert bob_state["status"] == "sent", bob_state
        sink = runtime.redis.lrange(keys.sink_pushes(settings.storage.redis_key_prefix), 0, -1)
        assert [json.loads(push)["provider"] for push in sink] == ["expo"]
        ready = http.get("/readyz")
        assert ready.status_code == 200 and ready.json["data"]["redis"] == "ok", ready.json

        with Dashboard({"REDIS_URL": secured_url}, tmp_path) as dashboard:
            queues = dashboard.get("queues.json")
        assert queues.status_code == 200, dashboard.output()
        assert "high" in {q["name"] for q in queues.json()["queues"]}  # the delivery's
    finally:
        socket.disconnect()
        gateway.stop()
        worker_runtime.shutdown()
        _truncate_all()


# --- a wrong URL stops the process at start-up -------------------------------------------


def wrong_urls(request: pytest.FixtureRequest) -> dict[str, tuple[str, str]]:
    """name -> (URL, what the error says)."""
    server: RedisServer = request.getfixturevalue("password_server")
    return {
        "wrong password": (server.url(password="not-the-password"), "refused REDIS_URL's"),
        "no password": (server.url(None), "refused REDIS_URL's"),
        "wrong ACL password": (server.url(ACL_USER, "nope"), "refused REDIS_URL's"),
        "ssl_* on redis://": (
            server.url() + "?ssl_ca_certs=/nonexistent/ca.crt",
            "need rediss://",
        ),
    }


@pytest.mark.parametrize(
    "case", ["wrong password", "no password", "wrong ACL password", "ssl_* on redis://"]
)
def test_a_wrong_url_stops_the_api_and_the_worker_runtime(case, request, database_url):
    url, says = wrong_urls(request)[case]
    settings = load_settings(realtime_env(database_url, url))

    with pytest.raises(RedisAccessError, match=says) as api_error:
        create_app(settings)
    with pytest.raises(RedisAccessError, match=says):
        worker_runtime.configure(settings)

    message = str(api_error.value)
    assert redacted(url) in message
    assert "not-the-password" not in message and "nope" not in message


def test_the_processes_exit_at_start_naming_redis_url(password_server, database_url, tmp_path):
    url = password_server.url(password="not-the-password")
    env = {**realtime_env(database_url, url), "PYTHONUNBUFFERED": "1"}
    for args in (
        [sys.executable, "-m", "workers.run"],
        [sys.executable, "scheduler.py"],
        [sys.executable, "gateway.py", "--port", "0"],
    ):
        done = subprocess.run(
            args, cwd=ROOT, env={**os.environ, **env}, capture_output=True, timeout=60
        )
        output = (done.stdout + done.stderr).decode(errors="replace")
        assert done.returncode != 0, (args, output)
        assert "RedisAccessError" in output and "refused REDIS_URL's credentials" in output, output
        assert "not-the-password" not in output, output


def test_a_tls_url_without_the_ca_or_the_client_certificate_is_refused(tls_server, certificates):
    without_ca = tls_server.url()
    without_client_cert = tls_server.url(tls=certificates, client_cert=False)

    for url in (without_ca, without_client_cert):
        with pytest.raises(RedisAccessError, match="ssl_ca_certs") as error:
            check_access(url)
        assert PASSWORD not in str(error.value)
    check_access(tls_server.url(tls=certificates))


def test_a_redis_that_is_only_down_is_logged_not_fatal(caplog):
    check_access("redis://:secret@127.0.0.1:1/0")
    assert "event=redis_unreachable_at_start" in caplog.text
    assert "secret" not in caplog.text


def test_readyz_names_redis_when_it_stops_accepting_the_password(tmp_path: Path, database_url: str):
    server = RedisServer(any_binary(), tmp_path / "redis", password=PASSWORD).start()
    try:
        app = create_app(load_settings(realtime_env(database_url, server.url())))
        http = app.test_client()
        assert http.get("/readyz").status_code == 200
        admin = server.admin()
        admin.config_set("requirepass", "rotated-" + PASSWORD)
        admin.execute_command("CLIENT", "KILL", "TYPE", "normal")

        response = http.get("/readyz")

        assert response.status_code == 503
        assert "AuthenticationError" in response.json["error"]["details"]["redis"]
    finally:
        server.stop()
