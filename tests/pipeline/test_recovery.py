"""Nothing is lost: a worker killed with SIGKILL in the middle of a chunk, or a Redis
FLUSHALL, and the sweep recovers every notification; devices get each notification at
least once, and a second time at most for the chunk that was in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from core.catalog import Role
from devtools.embedded import start_redis
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
USERS = 30


def register_users(pipeline, count=USERS):
    ids = []
    for index in range(count):
        user_id = f"user-{index:03d}"
        pipeline.register(user_id, f"{index:064x}", "ios")
        ids.append(user_id)
    return ids


def statuses(db_session):
    db_session.expire_all()
    rows = db_session.execute(
        text("SELECT status, count(*) FROM notification_queue GROUP BY status")
    )
    return dict(rows.all())


def running_leases(db_session) -> int:
    """Rows still `processing` under a lease that has not run out (the sweep's test)."""
    return db_session.execute(
        text(
            "SELECT count(*) FROM notification_queue"
            " WHERE status = 'processing' AND lease_expires_at >= :now"
        ),
        {"now": datetime.now(UTC)},
    ).scalar_one()


def test_a_worker_killed_mid_chunk_loses_nothing(
    make_pipeline, pipeline_env, apns_standin, db_session
):
    pipeline = make_pipeline(PROCESSING_LEASE_SECONDS="2", OUTBOX_REENQUEUE_AFTER_SECONDS="0")
    users = register_users(pipeline)
    apns_standin.delay = 1.5  # every answer takes 1.5 s: the kill lands mid-chunk

    response = pipeline.client.post(
        "/api/v1/notifications/send",
        json={"notification_type": "new_match", "target": {"user_ids": users}},
        headers=pipeline.header("matching", Role.SERVICE),
    )
    assert response.status_code == 202
    worker = subprocess.Popen(
        [sys.executable, "-m", "workers.run"],
        cwd=ROOT,
        env={**os.environ, **pipeline_env, "PROCESSING_LEASE_SECONDS": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: len(apns_standin.received) > 0 or statuses(db_session).get("processing"),
            timeout=30,
        )
        wait_until(lambda: statuses(db_session).get("processing", 0) > 0, timeout=30)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    in_flight = statuses(db_session).get("processing", 0)
    apns_standin.delay = 0.0

    # PROCESSING_LEASE_SECONDS=2: once every lease has run out, the sweep takes the rows back.
    wait_until(lambda: running_leases(db_session) == 0, timeout=10)
    pipeline.sweep()
    pipeline.work()

    assert in_flight > 0
    assert statuses(db_session) == {"sent": USERS}
    per_device = Counter(request.token for request in apns_standin.received)
    assert set(per_device) == {f"{i:064x}" for i in range(USERS)}
    assert max(per_device.values()) <= 2  # at least once; twice only for the chunk in flight
    duplicates = sum(count - 1 for count in per_device.values())
    assert duplicates <= pipeline.settings.delivery.batch_size


def test_a_redis_flushall_loses_nothing(make_pipeline, apns_standin, db_session, tmp_path):
    # A Redis of this test's own, so that FLUSHALL wipes nobody else's data.
    with start_redis(tmp_path / "redis") as redis_server:
        pipeline = make_pipeline(REDIS_URL=redis_server.url, OUTBOX_REENQUEUE_AFTER_SECONDS="0")
        users = register_users(pipeline, 10)

        pipeline.send(target={"user_ids": users})
        assert pipeline.runtime.redis.llen("rq:queue:high") == 1
        pipeline.runtime.redis.flushall()
        pipeline.work()  # nothing is queued any more
        assert statuses(db_session) == {"pending": 10}

        pipeline.sweep()
        pipeline.work()

    assert statuses(db_session) == {"sent": 10}
    assert sorted(Counter(r.token for r in apns_standin.received).values()) == [1] * 10


def test_two_sweeps_and_duplicate_jobs_never_send_twice(make_pipeline, apns_standin, db_session):
    pipeline = make_pipeline(OUTBOX_REENQUEUE_AFTER_SECONDS="0")
    users = register_users(pipeline, 10)

    pipeline.send(target={"user_ids": users})
    pipeline.sweep()
    pipeline.sweep()  # the rows are now on the queues three times over
    pipeline.work()

    assert statuses(db_session) == {"sent": 10}
    assert len(apns_standin.received) == 10
