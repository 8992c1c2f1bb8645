"""scheduler.py registers periodic jobs idempotently; maintenance jobs run on a real RQ worker."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

import scheduler as pulse_scheduler
from core.catalog import Priority
from intake.queues import make_scheduler, make_worker, queue
from jobs import maintenance
from models import PushToken
from tests.factories import APNS_TOKEN, EXPO_TOKEN


def scheduled(redis_client):
    return {job.id: job for job in make_scheduler(redis_client).get_jobs()}


def test_registering_twice_does_not_duplicate_schedules(redis_client, settings):
    pulse_scheduler.register_periodic_jobs(redis_client, pulse_scheduler.periodic_jobs(settings))
    first = scheduled(redis_client)
    pulse_scheduler.register_periodic_jobs(redis_client, pulse_scheduler.periodic_jobs(settings))
    second = scheduled(redis_client)

    assert set(first) == {job.id for job in pulse_scheduler.periodic_jobs(settings)}
    assert set(second) == set(first)
    assert len(list(make_scheduler(redis_client).get_jobs())) == len(
        pulse_scheduler.periodic_jobs(settings)
    )


def test_a_changed_schedule_replaces_the_old_one_and_a_dropped_one_goes(redis_client, settings):
    pulse_scheduler.register_periodic_jobs(redis_client, pulse_scheduler.periodic_jobs(settings))
    purge = pulse_scheduler.periodic_jobs(settings)[-1]
    faster = replace(purge, interval_seconds=60)
    other = replace(purge, id="pulse-periodic-something-else")

    pulse_scheduler.register_periodic_jobs(redis_client, (faster, other))
    jobs = scheduled(redis_client)
    assert set(jobs) == {purge.id, other.id}
    assert jobs[purge.id].meta["interval"] == 60

    pulse_scheduler.register_periodic_jobs(redis_client, (faster,))
    assert set(scheduled(redis_client)) == {purge.id}


def test_purge_inactive_tokens_runs_on_a_worker_and_keeps_recent_and_active_ones(
    app, register, db_session, redis_client
):
    register("alice", token=EXPO_TOKEN)
    register("alice", token=APNS_TOKEN)
    register("bob", token="ExponentPushToken[recently-dropped-00]")
    now = datetime.now(UTC)
    tokens = {t.user_id + t.provider: t for t in db_session.scalars(select(PushToken))}
    tokens["aliceexpo"].is_active = False
    tokens["aliceexpo"].deactivated_at = now - timedelta(days=31)
    tokens["bobexpo"].is_active = False
    tokens["bobexpo"].deactivated_at = now - timedelta(days=2)
    db_session.commit()

    queue(Priority.LOW, redis_client).enqueue(maintenance.purge_inactive_tokens, older_than_days=30)
    make_worker(redis_client).work(burst=True)

    db_session.expire_all()
    left = sorted(t.user_id + t.provider for t in db_session.scalars(select(PushToken)))
    assert left == ["aliceapns", "bobexpo"]
