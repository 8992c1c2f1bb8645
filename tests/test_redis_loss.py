"""Surviving Redis loss, tried from outside (issue #11, 1): a redis-server of this module's
own, real `workers.run`, `scheduler.py` and gateway processes, the API in this process,
pushes to the development sink (APNs and FCM tokens, no credentials).

- A FLUSHALL while notifications are in flight: nothing is restarted, every accepted
  notification is sent, the schedule and the workers' registrations come back.
- Redis killed for OUTAGE_SECONDS, then started empty on the same port: sends accepted
  before and during the outage are all sent, every process is still alive, and each one
  logged the outage once (one line when Redis went, one when it came back).

The two tests share one stack, in this order (the second one counts the first one's
silence too). The schedule's report in /readyz is tested on the suite's Redis at the end.
"""

from __future__ import annotations

import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import Worker
from rq.suspension import suspend
from sqlalchemy import bindparam, text

import scheduler as pulse_scheduler
from api import create_app
from api.auth import mint_token
from core.catalog import Role
from core.config import Settings, load_settings
from intake.queues import SERIALIZER
from models.db import db as database
from stores import schedule
from stores.client import backoff_delay
from tests.conftest import _truncate_all
from tests.factories import NO_QUIET_HOURS, apns_token, fcm_token, make_env
from tests.realtime.harness import Gateway, Process, start_worker
from tests.redis_servers import RedisServer, any_binary
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 30
USERS = 40  # half on APNs, half on FCM: one notification each per send
BATCH_SIZE = "5"  # ids per delivery job: a send is 8 jobs
DELIVERED_WITHIN = 30.0
PROCESSES = ("worker-1", "worker-2", "scheduler", "gateway")


@dataclass
class Stack:
    redis: RedisServer
    settings: Settings
    app: Flask
    client: FlaskClient
    processes: dict[str, Process]
    users: list[str]

    def header(self, user_id: str, role: Role = Role.USER) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self.settings, user_id, role)}"}

    def send(self) -> list[uuid.UUID]:
        """One notification to each user; accepted (202) whether Redis answers or not."""
        response = self.client.post(
            "/api/v1/notifications/send",
            json={"notification_type": "new_match", "target": {"user_ids": self.users}},
            headers=self.header("matching", Role.SERVICE),
        )
        assert response.status_code == 202, response.json
        return [uuid.UUID(i) for i in response.json["data"]["notification_ids"]]

    def statuses(self, ids: list[uuid.UUID]) -> Counter[str]:
        query = text("SELECT status FROM notification_queue WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        )
        with database.engine.connect() as connection:
            return Counter(connection.execute(query, {"ids": ids}).scalars())

    def wait_all_sent(self, ids: list[uuid.UUID]) -> None:
        wait_until(
            lambda: self.statuses(ids) == Counter({"sent": len(ids)}),
            DELIVERED_WITHIN,
            interval=0.2,
            message=lambda: f"statuses {dict(self.statuses(ids))}\n{self.logs()}",
        )

    def assert_all_alive(self) -> None:
        dead = [name for name, process in self.processes.items() if not process.alive()]
        assert not dead, f"exited: {dead}\n{self.logs()}"

    def count(self, name: str, text_: str) -> int:
        return self.processes[name].output().count(text_)

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} (last lines) ---\n" + "\n".join(p.output().splitlines()[-25:])
            for name, p in self.processes.items()
        )

    def readyz(self) -> tuple[int, dict]:
        response = self.client.get("/readyz")
        return response.status_code, response.json


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("redis-loss")
    server = RedisServer(any_binary(), directory)
    server.start()
    env = make_env(
        database_url,
        server.url(user=None),
        **NO_QUIET_HOURS,
        LOG_LEVEL="INFO",
        OUTBOX_SWEEP_INTERVAL_SECONDS="1",
        OUTBOX_REENQUEUE_AFTER_SECONDS="2",
        PROCESSING_LEASE_SECONDS="3",
        NOTIFICATION_BATCH_SIZE=BATCH_SIZE,
        REALTIME_SWEEP_INTERVAL_MS="100",  # the gateway's loop ticks 10 times a second
        SOCKETIO_CHANNEL=f"pulse-redis-loss-{uuid.uuid4().hex[:8]}",
    )
    settings = load_settings(env)
    app = create_app(settings)
    app.config["TESTING"] = True
    client = app.test_client()
    users = [f"loss-{index:03d}" for index in range(USERS)]
    for index, user_id in enumerate(users):
        token, platform = (apns_token(index), "ios") if index % 2 else (fcm_token(index), "android")
        response = client.post(
            "/api/v1/notifications/register-token",
            json={"token": token, "platform": platform},
            headers={"Authorization": f"Bearer {mint_token(settings, user_id, Role.USER)}"},
        )
        assert response.status_code in (200, 201), response.json

    processes: dict[str, Process] = {}
    try:
        processes["worker-1"] = start_worker("worker-1", env, directory)
        processes["worker-2"] = start_worker("worker-2", env, directory)
        processes["scheduler"] = Process(
            "scheduler", [sys.executable, "scheduler.py"], env, directory
        )
        processes["gateway"] = Gateway("gateway", env, directory)
        processes["scheduler"].wait_for_output("event=periodic_job_registered", timeout=30)
        yield Stack(server, settings, app, client, processes, users)
    finally:
        for process in processes.values():
            process.stop()
        server.close()
        _truncate_all()


def redis_tracebacks(output: str) -> list[str]:
    """The tracebacks in a log whose exception is one of Redis's."""
    found = []
    for chunk in output.split("Traceback (most recent call last):")[1:]:
        body = chunk.split("\nts=", 1)[0]
        if "redis.exceptions." in body:
            found.append(body)
    return found


def registered_worker_pids(stack: Stack) -> set[int]:
    return {w.pid for w in Worker.all(connection=stack.redis.client, serializer=SERIALIZER)}


def test_a_flushall_mid_run_loses_nothing_and_restarts_nothing(stack: Stack):
    # The workers take at most the job they are waiting for, then pause: the rest of the
    # jobs stay in Redis, in flight, when it is flushed.
    suspend(stack.redis.client)
    ids = stack.send() + stack.send()
    assert sum(stack.statuses(ids)[s] for s in ("pending", "processing")) > 0

    stack.redis.client.flushall()  # the jobs, the schedule, the suspension, the registry
    accepted_after = stack.send()

    stack.wait_all_sent(ids + accepted_after)
    stack.assert_all_alive()
    # The scheduler put its schedule back, the workers their registrations.
    wait_until(
        lambda: stack.readyz() == (200, {"success": True, "data": {
            "status": "ready", "postgresql": "ok", "redis": "ok", "schedule": "ok"}}),
        10,
        message=lambda: f"{stack.readyz()}",
    )  # fmt: skip
    assert stack.count("scheduler", "event=schedule_missing") >= 1
    workers = {stack.processes[name].proc.pid for name in ("worker-1", "worker-2")}
    wait_until(lambda: workers <= registered_worker_pids(stack), 10)
    # Nobody saw Redis go away: nothing to log.
    for name in PROCESSES:
        assert stack.count(name, "event=redis_unavailable") == 0, stack.logs()


def test_redis_down_for_30_s_then_back_empty_loses_nothing(stack: Stack):
    before = stack.send()
    stack.redis.kill()
    outage_ends = time.monotonic() + OUTAGE_SECONDS

    during = stack.send()  # accepted: the rows wait in PostgreSQL
    status, body = stack.readyz()
    assert status == 503 and set(body["error"]["details"]) == {"redis"}, body
    # Each process notices, says so once, and keeps running for the whole outage.
    for name in PROCESSES:
        stack.processes[name].wait_for_output("event=redis_unavailable", timeout=15)
    while time.monotonic() < outage_ends:
        stack.assert_all_alive()
        time.sleep(0.5)
    stack.assert_all_alive()

    stack.redis.start()  # the same port, empty

    stack.wait_all_sent(before + during)
    for name in PROCESSES:
        stack.processes[name].wait_for_output("event=redis_back", timeout=10)
    stack.assert_all_alive()
    for name in PROCESSES:
        assert stack.count(name, "event=redis_unavailable") == 1, stack.logs()
        assert stack.count(name, "event=redis_back") == 1, stack.logs()
    # Not a line or a traceback an attempt: at most the failure of a job that was running
    # when Redis went, and RQ's own retry lines never.
    for name in ("worker-1", "worker-2"):
        output = stack.processes[name].output()
        assert len(redis_tracebacks(output)) <= 1, output
        assert "could not connect to Redis instance" not in output
        assert "found an unhandled exception" not in output
    for name in ("scheduler", "gateway"):
        assert stack.count(name, "Traceback") == 0, stack.processes[name].output()
    wait_until(lambda: stack.readyz()[1]["data"]["schedule"] == "ok", 10)
    workers = {stack.processes[name].proc.pid for name in ("worker-1", "worker-2")}
    wait_until(lambda: workers <= registered_worker_pids(stack), 10)
    # A sweep after the backlog: the gateways' and the workers' Redis is in use again.
    stack.wait_all_sent(stack.send())


def test_started_while_redis_is_down_they_wait_then_stop_or_carry_on(
    database_url: str, tmp_path: Path
):
    server = RedisServer(any_binary(), tmp_path)  # its port, nothing listening yet
    env = make_env(database_url, server.url(user=None), LOG_LEVEL="INFO")
    started = {
        name: Process(name, [sys.executable, *args], env, tmp_path)
        for name, args in (
            ("stopped-worker", ["-m", "workers.run"]),
            ("stopped-scheduler", ["scheduler.py"]),
            ("worker", ["-m", "workers.run"]),
            ("scheduler", ["scheduler.py"]),
        )
    }
    try:
        for process in started.values():
            process.wait_for_output("event=redis_unavailable", timeout=30)
        # A stop while waiting for Redis is a clean stop.
        for name in ("stopped-worker", "stopped-scheduler"):
            started[name].proc.send_signal(signal.SIGTERM)
            assert started[name].proc.wait(10) == 0, started[name].output()

        server.start()

        for name in ("worker", "scheduler"):
            started[name].wait_for_output("event=redis_back", timeout=10)
            assert started[name].alive(), started[name].output()
        pid = started["worker"].proc.pid
        wait_until(
            lambda: pid in {w.pid for w in Worker.all(server.client, serializer=SERIALIZER)}, 10
        )
        wait_until(lambda: server.client.zcard("rq:scheduler:scheduled_jobs") > 0, 10)
        for name in ("worker", "scheduler"):
            assert started[name].output().count("event=redis_unavailable") == 1
            started[name].proc.send_signal(signal.SIGTERM)
            assert started[name].proc.wait(10) == 0, started[name].output()
    finally:
        for process in started.values():
            process.stop()
        server.close()


# --- the schedule as /readyz reports it (the suite's Redis, no scheduler running) --------


def test_readyz_reports_a_missing_or_overdue_schedule_without_failing(
    client, settings, redis_client
):
    prefix = settings.storage.redis_key_prefix
    jobs = pulse_scheduler.periodic_jobs(settings)

    def schedule_field() -> str:
        response = client.get("/readyz")
        assert response.status_code == 200, response.json
        return response.json["data"]["schedule"]

    assert schedule_field() == "missing"
    pulse_scheduler.register_periodic_jobs(redis_client, jobs, prefix)
    assert schedule_field() == "ok"
    assert schedule.missing(redis_client, prefix, [job.id for job in jobs]) == []

    sweep = jobs[0].id
    redis_client.zadd("rq:scheduler:scheduled_jobs", {sweep: time.time() - 120})
    assert schedule_field() == f"overdue: {sweep}"
    redis_client.zrem("rq:scheduler:scheduled_jobs", sweep)
    assert schedule_field() == f"missing: {sweep}"
    assert schedule.missing(redis_client, prefix, [job.id for job in jobs]) == [sweep]

    redis_client.flushdb()
    assert schedule_field() == "missing"
    assert schedule.missing(redis_client, prefix, [sweep]) == [sweep]


def test_the_backoff_doubles_up_to_its_cap_with_jitter():
    for attempt in range(1, 40):
        ceiling = min(5.0, 0.5 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len({backoff_delay(10) for _ in range(20)}) > 1
