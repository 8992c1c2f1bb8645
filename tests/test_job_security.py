"""Job security (issue #11, section 2): RQ's jobs are JSON, and a worker runs only Pulse's
jobs, so that whoever can write to Redis cannot run code in a worker or the scheduler.

The planted payloads would create a file in the test's tmp dir if anything ran them: a
pickle whose loading calls `Path.touch`, a JSON job naming `pathlib.Path.touch`. Each test
first shows that its payload is live (it does create its file where the defence is left
out), then that Pulse's worker (a real `python -m workers.run`, or a burst worker) and
scheduler never run it and carry on with the next job.
"""

from __future__ import annotations

import json
import pickle
import secrets
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import SimpleWorker
from rq.defaults import UNSERIALIZABLE_RETURN_VALUE_PAYLOAD
from rq.job import JobStatus
from rq.serializers import JSONSerializer
from rq_scheduler import Scheduler

import runtime as worker_runtime
import scheduler as pulse_scheduler
from api import create_app
from api.auth import mint_token
from core.catalog import Priority, Role
from core.config import load_settings
from intake import dispatch
from intake.queues import (
    SERIALIZER,
    PulseJob,
    all_queues,
    is_pulse_job,
    make_scheduler,
    make_worker,
    queue,
)
from tests.conftest import _truncate_all
from tests.factories import EXPO_TOKEN, NO_QUIET_HOURS, make_env
from tests.procfile import Dashboard, procfile_command
from tests.realtime.harness import start_worker
from tests.waiting import wait_until

TOUCH = "pathlib.Path.touch"


class _Touch:
    """Pickles to a call of Path(target).touch(): whatever unpickles it creates the file."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.target,))


def pickle_payload(target: Path) -> bytes:
    return pickle.dumps(_Touch(target), protocol=pickle.HIGHEST_PROTOCOL)


def plant(connection: redis.Redis, queue_name: str, data: bytes, meta: bytes | None) -> str:
    """Write a job's hash and queue it the way anyone with write access to Redis could,
    without RQ: `data` is the job's payload as RQ stores it (zlib of the serialized
    (function, instance, args, kwargs))."""
    job_id = f"planted-{secrets.token_hex(6)}"
    fields: dict[str, Any] = {
        "data": zlib.compress(data),
        "origin": queue_name,
        "status": JobStatus.QUEUED.value,
        "created_at": "2026-01-01T00:00:00.000000Z",
        "enqueued_at": "2026-01-01T00:00:00.000000Z",
        "description": "planted",
        "timeout": 60,
    }
    if meta is not None:
        fields["meta"] = meta
    connection.hset(f"rq:job:{job_id}", mapping=fields)
    connection.sadd("rq:queues", f"rq:queue:{queue_name}")
    connection.rpush(f"rq:queue:{queue_name}", job_id)
    return job_id


def json_job(func: str, *args: Any) -> bytes:
    return json.dumps([func, None, list(args), {}]).encode()


def failure(connection: redis.Redis, job_id: str) -> str:
    job = PulseJob.fetch(job_id, connection=connection)
    assert job.get_status() == JobStatus.FAILED, (job_id, job.get_status())
    result = job.latest_result()
    return result.exc_string if result is not None and result.exc_string else ""


# --- the wiring ---------------------------------------------------------------------------


def test_every_queue_worker_and_the_scheduler_are_json_and_pulse_jobs_only(redis_client):
    worker = make_worker(redis_client)
    scheduler = make_scheduler(redis_client)
    assert worker.serializer is SERIALIZER is JSONSerializer
    assert worker.job_class is PulseJob
    assert all(q.serializer is SERIALIZER and q.job_class is PulseJob for q in worker.queues)
    assert all(q.serializer is SERIALIZER for q in all_queues(redis_client))
    assert scheduler.job_class is PulseJob
    assert (
        scheduler.queue_class.from_queue_key("rq:queue:normal", connection=redis_client).serializer
        is SERIALIZER
    )
    with pytest.raises(ValueError, match="JSON only"):
        PulseJob(connection=redis_client, serializer="pickle")


def pulse_job_names(settings: Any) -> set[str]:
    """Every function Pulse enqueues: by dotted path (intake.dispatch), periodically
    (scheduler.py)."""
    enqueued = {dispatch.DELIVER_NOTIFICATIONS, dispatch.FAN_OUT_SEND, dispatch.BROADCAST_EVENTS}
    periodic = {
        f"{job.func.__module__}.{job.func.__qualname__}"
        for job in pulse_scheduler.periodic_jobs(settings)
    }
    return enqueued | periodic


def test_a_worker_runs_the_functions_of_jobs_and_nothing_else(settings):
    assert all(is_pulse_job(name) for name in pulse_job_names(settings))
    for name in (
        "os.system",
        "builtins.exec",
        TOUCH,
        "jobs",
        "jobs.delivery.os.system",  # os, as jobs.delivery imports it
        "jobs.delivery.uuid.UUID",
        "jobs.outbox.sweep_outbox.__globals__",
        "jobs.delivery._not_public",
        "jobs.nonexistent.job",
        "Jobs.outbox.sweep_outbox",
        None,
        ["jobs.outbox.sweep_outbox"],
    ):
        assert not is_pulse_job(name), name


def test_the_procfile_runs_rq_dashboard_with_the_json_serializer():
    command = procfile_command("dashboard")
    assert " --json" in command
    # The URL (and its password) is not on the command line, where `ps` shows it to all.
    assert "--redis-url" not in command and 'RQ_DASHBOARD_REDIS_URL="${REDIS_URL}"' in command


@pytest.mark.slow
def test_rq_dashboard_shows_pulse_jobs_and_never_unpickles_a_planted_one(
    tmp_path, redis_url, redis_client
):
    """rq-dashboard reads every job it lists: with RQ's default serializer it unpickles
    them (a planted pickle ran in the dashboard before `--json`)."""
    job = queue(Priority.NORMAL, redis_client).enqueue(
        "jobs.maintenance.purge_inactive_tokens", older_than_days=30
    )
    target = tmp_path / "from-dashboard"
    planted = plant(
        redis_client, Priority.NORMAL.value, pickle_payload(target), pickle_payload(target)
    )

    with Dashboard({"REDIS_URL": redis_url}, tmp_path) as dashboard:
        listed = dashboard.get(f"jobs/{Priority.NORMAL.value}/queued/8/asc/1.json")
        shown = dashboard.get(f"job/{job.id}.json")
        dashboard.get(f"job/{planted}.json")

    assert listed.status_code == 200 and job.id in {j["id"] for j in listed.json()["jobs"]}
    assert shown.status_code == 200
    assert shown.json()["description"] == (
        "jobs.maintenance.purge_inactive_tokens(older_than_days=30)"
    )
    assert not target.exists()


# --- pickle -------------------------------------------------------------------------------


def test_the_pickle_payload_is_live(tmp_path):
    """The control: unpickling the planted bytes does run code (in tmp_path only)."""
    target = tmp_path / "control"
    pickle.loads(pickle_payload(target))
    assert target.exists()


@pytest.mark.slow
def test_a_pickled_job_planted_in_redis_is_never_unpickled_by_a_real_worker(
    tmp_path, env, redis_client
):
    worker = start_worker("pickle-worker", env, tmp_path)
    try:
        data_target = tmp_path / "from-data"
        meta_target = tmp_path / "from-meta"
        planted = [
            # Both fields a worker reads: the job's payload and its meta.
            plant(
                redis_client,
                Priority.CRITICAL.value,
                pickle_payload(data_target),
                pickle_payload(meta_target),
            ),
            # A producer still on RQ's default serializer, naming a Pulse job.
            plant(
                redis_client,
                Priority.HIGH.value,
                pickle.dumps(("jobs.outbox.sweep_outbox", None, (), {})),
                None,
            ),
        ]
        # A real job after them, on the last queue: once it is done, so are they.
        after = queue(Priority.LOW, redis_client).enqueue(
            "jobs.maintenance.purge_inactive_tokens", older_than_days=30
        )

        wait_until(
            lambda: (
                after.get_status() in (JobStatus.FINISHED, JobStatus.FAILED)
                or data_target.exists()
                or meta_target.exists()
            ),
            30,
            message=lambda: f"the job after the planted ones did not run:\n{worker.output()}",
        )
        assert not data_target.exists() and not meta_target.exists()
        assert after.get_status() == JobStatus.FINISHED, worker.output()
        for job_id in planted:
            assert "DeserializationError" in failure(redis_client, job_id)
        assert worker.alive(), worker.output()
        assert "DeserializationError" in worker.output()
    finally:
        worker.stop()


def test_a_pickled_job_planted_in_the_schedule_is_dropped_unread(tmp_path, redis_client, settings):
    target = tmp_path / "from-schedule"
    job_id = plant(redis_client, Priority.CRITICAL.value, pickle_payload(target), None)
    redis_client.lrem(f"rq:queue:{Priority.CRITICAL.value}", 0, job_id)
    redis_client.zadd("rq:scheduler:scheduled_jobs", {job_id: 0})
    scheduler = pulse_scheduler.register_periodic_jobs(
        redis_client, pulse_scheduler.periodic_jobs(settings)
    )

    scheduler.enqueue_jobs()

    assert not target.exists()
    assert job_id not in scheduler
    queued = {job_id for q in all_queues(redis_client) for job_id in q.job_ids}
    assert job_id not in queued
    # The periodic jobs were moved to their queues all the same.
    assert {job.id for job in pulse_scheduler.periodic_jobs(settings)} <= queued


def test_periodic_jobs_scheduled_as_pickle_by_an_older_release_are_replaced_by_json(
    redis_client, settings
):
    """The upgrade: the scheduler, starting, replaces the periodic jobs it cannot read."""
    old = Scheduler(connection=redis_client)  # rq-scheduler's defaults: pickle
    for job in pulse_scheduler.periodic_jobs(settings):
        old.schedule(
            scheduled_time=datetime.now(UTC),
            func=job.func,
            kwargs=job.kwargs,
            interval=job.interval_seconds,
            id=job.id,
            queue_name=job.queue,
            meta={"pulse_signature": pulse_scheduler._signature(job)},
        )

    scheduler = pulse_scheduler.register_periodic_jobs(
        redis_client, pulse_scheduler.periodic_jobs(settings)
    )

    for job in pulse_scheduler.periodic_jobs(settings):
        data = zlib.decompress(redis_client.hget(f"rq:job:{job.id}", "data"))
        assert json.loads(data)[0] == f"{job.func.__module__}.{job.func.__qualname__}"
        assert json.loads(redis_client.hget(f"rq:job:{job.id}", "meta"))["pulse_signature"]
        assert job.id in scheduler


# --- JSON naming something else -----------------------------------------------------------


def test_a_json_job_naming_any_other_function_is_refused(tmp_path, app, redis_client):
    control = tmp_path / "control"
    target = tmp_path / "from-json"
    name = Priority.CRITICAL.value
    # The control: JSON alone does not stop it. RQ's own worker, on the same JSON, runs it.
    plant(redis_client, name, json_job(TOUCH, str(control)), None)
    SimpleWorker(
        [queue(Priority.CRITICAL, redis_client)], connection=redis_client, serializer=SERIALIZER
    ).work(burst=True)
    assert control.exists()

    forbidden = plant(redis_client, name, json_job(TOUCH, str(target)), None)
    with_callback = plant(redis_client, name, json_job("jobs.outbox.sweep_outbox"), None)
    redis_client.hset(f"rq:job:{with_callback}", "failure_callback_name", TOUCH)
    with_webhook = plant(redis_client, name, json_job("jobs.outbox.sweep_outbox"), None)
    redis_client.hset(
        f"rq:job:{with_webhook}",
        "webhooks",
        json.dumps([{"url": "http://127.0.0.1:1/", "job_status": "finished"}]),
    )
    after = queue(Priority.LOW, redis_client).enqueue(
        "jobs.maintenance.purge_inactive_tokens", older_than_days=30
    )

    make_worker(redis_client).work(burst=True)

    assert not target.exists()
    assert f"names '{TOUCH}', which is not a Pulse job" in failure(redis_client, forbidden)
    assert "names a callback" in failure(redis_client, with_callback)
    assert "asks for webhooks" in failure(redis_client, with_webhook)
    assert after.get_status() == JobStatus.FINISHED


# --- every Pulse job, through JSON --------------------------------------------------------


@pytest.fixture
def dev_pipeline(database_url: str, redis_url: str, redis_client: redis.Redis) -> Any:
    """An API and this process's worker runtime on the development sink (no credentials)."""
    settings = load_settings(
        make_env(database_url, redis_url, PULSE_ENV="development", **NO_QUIET_HOURS)
    )
    app = create_app(settings)
    yield settings, app.test_client(), worker_runtime.configure(settings)
    worker_runtime.shutdown()
    _truncate_all()


def test_every_pulse_job_round_trips_through_json_and_returns_json(dev_pipeline, redis_client):
    settings, http, runtime = dev_pipeline

    def header(user: str, role: Role = Role.USER) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(settings, user, role)}"}

    assert (
        http.post(
            "/api/v1/notifications/register-token",
            json={"token": EXPO_TOKEN, "platform": "ios"},
            headers=header("alice"),
        ).status_code
        == 201
    )
    service = header("matching", Role.SERVICE)
    for target in ({"user_ids": ["alice"]}, {"all_users": True}):
        response = http.post(
            "/api/v1/notifications/send",
            json={"notification_type": "new_match", "target": target},
            headers=service,
        )
        assert response.status_code in (200, 201, 202), response.json
    response = http.post(
        "/api/v1/realtime/events",
        json={
            "event_type": "discovery_update",
            "target_user_id": "alice",
            "user_id": "bob",
            "payload": {"profile_id": "bob", "reason": "new_profile"},
        },
        headers=service,
    )
    assert response.status_code == 202, response.json
    pulse_scheduler.register_periodic_jobs(
        runtime.redis, pulse_scheduler.periodic_jobs(settings)
    ).enqueue_jobs()

    queued: dict[str, str] = {}
    for q in all_queues(redis_client):
        for job_id in q.job_ids:
            key = f"rq:job:{job_id}"
            data = zlib.decompress(redis_client.hget(key, "data"))
            func, instance, args, kwargs = json.loads(data)
            json.loads(redis_client.hget(key, "meta") or b"{}")
            assert instance is None and isinstance(args, list) and isinstance(kwargs, dict)
            queued[job_id] = func
            # Keep every result (delivery jobs keep none) so that it can be read back.
            redis_client.hset(key, "result_ttl", 600)
    assert set(queued.values()) == pulse_job_names(settings)

    make_worker(runtime.redis).work(burst=True)

    for job_id, func in queued.items():
        job = PulseJob.fetch(job_id, connection=redis_client)
        assert job.get_status() == JobStatus.FINISHED, (func, failure(redis_client, job_id))
        value = job.return_value()
        assert value != UNSERIALIZABLE_RETURN_VALUE_PAYLOAD, func
        assert json.loads(json.dumps(value)) == value, (func, value)
