"""The `maintenance` queue (issue #12): the periodic housekeeping has a queue of its own,
which a default worker serves after the four priority queues and which a deployment may
serve with workers of its own (`python -m workers.run --queues maintenance`)."""

from __future__ import annotations

import uuid

import pytest
from rq.job import JobStatus

import runtime as worker_runtime
import scheduler as pulse_scheduler
from core.catalog import Priority
from core.config import load_settings
from intake.queues import (
    MAINTENANCE_QUEUE,
    WORKER_QUEUES,
    make_worker,
    parse_queue_names,
    queue,
)
from jobs import delivery, maintenance
from tests.realtime.harness import start_worker
from tests.waiting import wait_until


@pytest.fixture
def worker_context(app, env):
    yield worker_runtime.configure(load_settings(env))
    worker_runtime.shutdown()


def test_housekeeping_is_scheduled_on_the_maintenance_queue(settings):
    queues = {job.id: job.queue for job in pulse_scheduler.periodic_jobs(settings)}
    for job_id in (
        "pulse-periodic-expo-receipts",
        "pulse-periodic-purge-inactive-tokens",
        "pulse-periodic-retention",
    ):
        assert queues[job_id] == MAINTENANCE_QUEUE == "maintenance"
    # What recovers or carries deliveries stays on the priority queues.
    assert queues["pulse-periodic-outbox-sweep"] == Priority.CRITICAL.value
    assert queues["pulse-periodic-realtime-sweep"] == Priority.HIGH.value


def test_a_default_worker_serves_the_priority_queues_first_then_maintenance(redis_client):
    names = make_worker(redis_client).queue_names()
    assert names == ["critical", "high", "normal", "low", "maintenance"]
    assert tuple(names) == WORKER_QUEUES


def test_queue_names_are_checked():
    assert parse_queue_names("maintenance") == ("maintenance",)
    assert parse_queue_names("critical, high,normal,low") == ("critical", "high", "normal", "low")
    for bad in ("", "default", "critical,critical"):
        with pytest.raises(ValueError):
            parse_queue_names(bad)


def _delivery(redis_client, priority: Priority = Priority.LOW):
    return queue(priority, redis_client).enqueue(
        delivery.deliver_notifications, [str(uuid.uuid4())]
    )


def _housekeeping(redis_client):
    return queue(MAINTENANCE_QUEUE, redis_client).enqueue(
        maintenance.purge_inactive_tokens, older_than_days=30
    )


def test_the_default_worker_runs_both_deliveries_first(worker_context, redis_client):
    housekeeping = _housekeeping(redis_client)  # enqueued first, still served last
    deliveries = [_delivery(redis_client, p) for p in (Priority.LOW, Priority.CRITICAL)]

    make_worker(redis_client).work(burst=True)

    for job in (housekeeping, *deliveries):
        job.refresh()
        assert job.is_finished, job.exc_info
    assert max(job.ended_at for job in deliveries) <= housekeeping.started_at


@pytest.mark.slow
def test_a_maintenance_worker_runs_housekeeping_and_no_delivery(tmp_path, env, redis_client):
    pending = _delivery(redis_client, Priority.CRITICAL)
    housekeeping = _housekeeping(redis_client)
    worker = start_worker("maintenance-worker", env, tmp_path, "--queues", "maintenance")
    try:
        wait_until(
            lambda: housekeeping.get_status() in (JobStatus.FINISHED, JobStatus.FAILED),
            30,
            message=lambda: f"the maintenance job did not run:\n{worker.output()}",
        )
        assert housekeeping.get_status() == JobStatus.FINISHED, worker.output()
        assert "Listening on maintenance..." in worker.output(), worker.output()
    finally:
        worker.stop()
    assert pending.get_status() == JobStatus.QUEUED
    assert queue(Priority.CRITICAL, redis_client).job_ids == [pending.id]


@pytest.mark.slow
def test_a_push_worker_leaves_maintenance_alone(tmp_path, env, redis_client):
    housekeeping = _housekeeping(redis_client)
    push = _delivery(redis_client, Priority.LOW)
    worker = start_worker("push-worker", env, tmp_path, "--queues", "critical,high,normal,low")
    try:
        wait_until(
            lambda: push.get_status() in (JobStatus.FINISHED, JobStatus.FAILED),
            30,
            message=lambda: f"the delivery did not run:\n{worker.output()}",
        )
        assert push.get_status() == JobStatus.FINISHED, worker.output()
    finally:
        worker.stop()
    assert housekeeping.get_status() == JobStatus.QUEUED
