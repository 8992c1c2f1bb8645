"""Registers Pulse's periodic jobs with rq-scheduler, idempotently, and runs the scheduler.

Each periodic job has a fixed id: restarting this process replaces a changed schedule and
never duplicates one. `python scheduler.py --register-only` registers and exits.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from rq_scheduler import Scheduler

from core.catalog import Priority
from core.config import Settings
from intake.queues import MAINTENANCE_QUEUE
from jobs import events as realtime_events
from jobs import maintenance, outbox, presence, receipts

log = logging.getLogger("scheduler")


@dataclass(frozen=True)
class PeriodicJob:
    id: str
    func: Callable[..., Any]
    interval_seconds: int
    queue: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    timeout_seconds: int = 300


def periodic_jobs(settings: Settings) -> tuple[PeriodicJob, ...]:
    return (
        PeriodicJob(
            id="pulse-periodic-outbox-sweep",
            func=outbox.sweep_outbox,
            interval_seconds=settings.delivery.outbox_sweep_interval_seconds,
            # The sweep is what recovers lost work: it must not wait behind a backlog.
            queue=Priority.CRITICAL.value,
            timeout_seconds=60,
        ),
        PeriodicJob(
            id="pulse-periodic-expo-receipts",
            func=receipts.check_expo_receipts,
            interval_seconds=60,
            queue=MAINTENANCE_QUEUE.value,
        ),
        PeriodicJob(
            # The gateways sweep every REALTIME_SWEEP_INTERVAL_MS themselves; this one covers
            # a deployment whose gateways all died (their connections still expire).
            id="pulse-periodic-realtime-sweep",
            func=presence.sweep_realtime,
            interval_seconds=10,
            queue=Priority.HIGH.value,
            timeout_seconds=60,
        ),
        PeriodicJob(
            id="pulse-periodic-realtime-events-sweep",
            func=realtime_events.sweep_realtime_events,
            interval_seconds=30,
            queue=Priority.HIGH.value,
            timeout_seconds=60,
        ),
        PeriodicJob(
            id="pulse-periodic-purge-inactive-tokens",
            func=maintenance.purge_inactive_tokens,
            interval_seconds=6 * 3600,
            queue=MAINTENANCE_QUEUE.value,
            kwargs={"older_than_days": 30},
        ),
    )


def _signature(job: PeriodicJob) -> dict[str, Any]:
    return {
        "func": f"{job.func.__module__}.{job.func.__qualname__}",
        "interval": job.interval_seconds,
        "queue": job.queue,
        "kwargs": job.kwargs,
    }


def register_periodic_jobs(connection: redis.Redis, jobs: tuple[PeriodicJob, ...]) -> Scheduler:
    """Make rq-scheduler's schedule equal `jobs`: add missing ones, replace changed ones,
    leave unchanged ones alone, and drop Pulse periodic jobs that are no longer listed."""
    scheduler = Scheduler(connection=connection)
    existing = {job.id: job for job in scheduler.get_jobs()}
    wanted = {job.id for job in jobs}
    for job_id, job in existing.items():
        if job_id.startswith("pulse-periodic-") and job_id not in wanted:
            scheduler.cancel(job)
            job.delete()
            log.info("event=periodic_job_removed id=%s", job_id)
    for periodic in jobs:
        current = existing.get(periodic.id)
        if current is not None and current.meta.get("pulse_signature") == _signature(periodic):
            continue
        if current is not None:
            scheduler.cancel(current)
            current.delete()
        scheduler.schedule(
            scheduled_time=datetime.now(UTC),
            func=periodic.func,
            kwargs=periodic.kwargs,
            interval=periodic.interval_seconds,
            repeat=None,
            id=periodic.id,
            queue_name=periodic.queue,
            timeout=periodic.timeout_seconds,
            result_ttl=periodic.interval_seconds * 2,
            meta={"pulse_signature": _signature(periodic)},
        )
        log.info(
            "event=periodic_job_registered id=%s every=%ds", periodic.id, periodic.interval_seconds
        )
    return scheduler


def main() -> None:
    from runtime import bootstrap

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--register-only", action="store_true", help="register and exit")
    parser.add_argument("--interval", type=int, default=1, help="seconds between scheduler polls")
    arguments = parser.parse_args()
    context = bootstrap()
    scheduler = register_periodic_jobs(context.redis, periodic_jobs(context.settings))
    if arguments.register_only:
        return
    scheduler = Scheduler(connection=context.redis, interval=arguments.interval)
    scheduler.run()


if __name__ == "__main__":
    main()
