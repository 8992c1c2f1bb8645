"""The outbox sweep, run every few seconds by rq-scheduler: whatever is due and not in
flight goes (back) on the queues. It is what makes a crash between commit and enqueue,
a lost Redis, or a killed worker lose nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from intake.dispatch import enqueue_deliveries, enqueue_fan_out
from models.db import db
from models.outbox import take_back_expired_leases, take_due
from models.sends import stalled_fan_outs
from runtime import current_runtime

log = logging.getLogger(__name__)

SWEEP_LIMIT = 20_000


def sweep_outbox() -> dict[str, int]:
    """Take back rows whose lease ran out, enqueue due rows (most urgent first) and resume
    stalled all-users fan-outs. Safe to run concurrently: rows are taken with SKIP LOCKED."""
    runtime = current_runtime()
    settings = runtime.settings
    now = datetime.now(UTC)
    stale_before = now - timedelta(seconds=settings.delivery.outbox_reenqueue_after_seconds)
    with db.session_scope() as session:
        taken_back = take_back_expired_leases(session, now)
        due = take_due(session, now, stale_before, SWEEP_LIMIT)
        stalled = stalled_fan_outs(session, stale_before)
    jobs = enqueue_deliveries(runtime.redis, due, settings.delivery.batch_size)
    for send_id, after in stalled:
        enqueue_fan_out(runtime.redis, send_id, after)
    counts = {
        "taken_back": taken_back,
        "enqueued_rows": sum(len(ids) for ids in due.values()),
        "enqueued_jobs": jobs,
        "resumed_fan_outs": len(stalled),
    }
    if any(counts.values()):
        log.info("event=outbox_swept %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts
