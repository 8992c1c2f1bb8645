"""The periodic jobs of the real-time gateway, run by a real RQ worker: the sweep that
closes connections whose record expired (a gateway died), and the one that re-enqueues
events whose broadcast job was lost."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import runtime as worker_runtime
from api import create_app
from core import keys
from core.catalog import Priority
from core.config import load_settings
from intake.queues import make_worker, queue
from models.db import db
from models.events import RealtimeEvent, add_events
from stores.connections import ConnectionRecord, ConnectionStore
from tests.realtime.conftest import realtime_env
from tests.realtime.harness import ROOT
from tests.waiting import wait_until


def test_the_job_modules_import_on_their_own():
    """A worker imports a job's module by name: no import cycle may hide it."""
    modules = ("jobs.events", "jobs.presence", "intake.client", "realtime.presence", "scheduler")
    for module in (*modules, "gateway"):
        result = subprocess.run(
            [sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr


def test_the_sweep_closes_connections_nobody_refreshes(
    database_url, redis_url, redis_client, users, auth_header
):
    from jobs.presence import sweep_realtime

    # A key prefix no gateway of this run sweeps: only the job can close the record.
    settings = load_settings(
        realtime_env(database_url, redis_url, REDIS_KEY_PREFIX="pulse-sweep-job:")
    )
    client = create_app(settings).test_client()
    (alice,) = users(1)
    runtime = worker_runtime.configure(settings)
    try:
        store = ConnectionStore(runtime.redis, settings.storage.redis_key_prefix, ttl_seconds=1)
        now = time.time()
        store.add(
            ConnectionRecord("sid-lost", alice, None, None, None, False, now, now, now, "dead")
        )
        assert client.get("/api/v1/realtime/status", headers=auth_header(alice)).json["data"][
            "websocket_connected"
        ]

        user_connections = keys.rt_user_connections(settings.storage.redis_key_prefix, alice)

        def swept() -> bool:
            queue(Priority.HIGH, runtime.redis).enqueue(sweep_realtime)
            make_worker(runtime.redis).work(burst=True)
            return not redis_client.sismember(user_connections, "sid-lost")

        # The record lives one second (ttl_seconds=1); the first sweep after that closes it.
        wait_until(swept, timeout=5, interval=0.1)
        status = client.get("/api/v1/realtime/status", headers=auth_header(alice))
        assert status.json["data"]["websocket_connected"] is False
        heartbeat = client.post(
            "/api/v1/realtime/heartbeat", json={"device_id": "x"}, headers=auth_header(alice)
        ).json["data"]
        assert heartbeat["presence"]["status"] == "away"
    finally:
        worker_runtime.shutdown()


def test_lost_broadcasts_are_re_enqueued_and_sent(app, test_settings, users):
    from jobs.events import sweep_realtime_events

    (alice,) = users(1)
    runtime = worker_runtime.configure(test_settings)
    try:
        with db.session_scope() as session:
            (event_id,) = add_events(session, "discovery_update", None, [alice], {})
            session.get(RealtimeEvent, event_id).created_at = datetime.now(UTC) - timedelta(
                minutes=1
            )
        queue(Priority.HIGH, runtime.redis).enqueue(sweep_realtime_events)
        make_worker(runtime.redis).work(burst=True)
        with db.session_scope() as session:
            row = session.get(RealtimeEvent, event_id)
            assert row.processed is True
            assert row.processed_at is not None
    finally:
        worker_runtime.shutdown()
