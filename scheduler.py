"""Registers Pulse's periodic jobs with rq-scheduler, idempotently, and runs the scheduler.

Each periodic job has a fixed id: restarting this process replaces a changed schedule and
never duplicates one. `python scheduler.py --register-only` registers and exits.

The scheduler outlives Redis going away: it logs one line when Redis stops answering and
one when it is back, reconnects with a capped, jittered backoff meanwhile, and carries on.
On every loop it checks, in one round trip, that each periodic job is still scheduled, and
registers them again if one is gone (a Redis that came back empty, a failover to an empty
replica): the outbox sweep never stops for good. /readyz reports the schedule
(stores/schedule.py).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from rq_scheduler import Scheduler

from core.catalog import Priority
from core.config import Settings
from intake.queues import MAINTENANCE_QUEUE, make_scheduler
from jobs import events as realtime_events
from jobs import maintenance, outbox, presence, receipts
from stores import schedule
from stores.client import UNAVAILABLE, RedisOutage, connect

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
            queue=MAINTENANCE_QUEUE,
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
            queue=MAINTENANCE_QUEUE,
            kwargs={"older_than_days": 30},
        ),
        PeriodicJob(
            # Bounded: at most max_batches batches of batch_size rows a step a run
            # (docs/pipeline.md, "Retention"); safe when two runs overlap.
            id="pulse-periodic-retention",
            func=maintenance.apply_retention,
            interval_seconds=600,
            queue=MAINTENANCE_QUEUE,
            kwargs={
                "batch_size": maintenance.RETENTION_BATCH,
                "max_batches": maintenance.RETENTION_MAX_BATCHES,
            },
            timeout_seconds=600,
        ),
    )


def _signature(job: PeriodicJob) -> dict[str, Any]:
    return {
        "func": f"{job.func.__module__}.{job.func.__qualname__}",
        "interval": job.interval_seconds,
        "queue": job.queue,
        "kwargs": job.kwargs,
    }


def register_periodic_jobs(
    connection: redis.Redis, jobs: tuple[PeriodicJob, ...], key_prefix: str | None = None
) -> Scheduler:
    """Make rq-scheduler's schedule equal `jobs`: add missing ones, replace changed ones,
    leave unchanged ones alone, and drop Pulse periodic jobs that are no longer listed.
    With `key_prefix`, record what was registered for /readyz (stores.schedule)."""
    scheduler = make_scheduler(connection)
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
    if key_prefix is not None:
        schedule.record(connection, key_prefix, {job.id: job.interval_seconds for job in jobs})
    return scheduler


class Stop(BaseException):
    """SIGTERM or SIGINT: leave the loop, even while waiting for Redis. A BaseException, as
    KeyboardInterrupt is, so that no `except Exception` on the way turns it into an error."""


def _stop(signum: int, _frame: object) -> None:
    log.info("event=scheduler_stopping signal=%d", signum)
    raise Stop


def _registered_again(scheduler: Scheduler, interval: float) -> None:
    """rq-scheduler's heartbeat, re-registering this scheduler if its key is gone (a Redis
    that came back empty); rq-scheduler itself would only extend a key that is not there."""
    if not scheduler.connection.expire(scheduler.key, int(interval) + 10):
        scheduler.register_birth()


def _best_effort(step: Callable[[], object]) -> None:
    with contextlib.suppress(*UNAVAILABLE):
        step()


def serve(
    scheduler: Scheduler, jobs: tuple[PeriodicJob, ...], key_prefix: str, interval: float
) -> None:
    """rq-scheduler's run loop (`Scheduler.run`), plus the schedule re-asserted on every
    loop. Returns only by an exception: one of UNAVAILABLE when Redis goes away."""
    connection = scheduler.connection
    ids = [job.id for job in jobs]
    register_periodic_jobs(connection, jobs, key_prefix)  # replaces a changed schedule
    scheduler.register_birth()
    try:
        while True:
            started = time.monotonic()
            _registered_again(scheduler, interval)
            if scheduler.acquire_lock():
                try:
                    gone = schedule.missing(connection, key_prefix, ids)
                    if gone:
                        log.warning("event=schedule_missing ids=%s", ",".join(gone))
                        register_periodic_jobs(connection, jobs, key_prefix)
                    scheduler.enqueue_jobs()
                finally:
                    scheduler.remove_lock()
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        _best_effort(scheduler.remove_lock)
        _best_effort(scheduler.register_death)


def run(url: str, jobs: tuple[PeriodicJob, ...], key_prefix: str, interval: float) -> None:
    """Serve until stopped, through any number of Redis outages: a fresh rq-scheduler each
    time Redis is back (its old registration may be gone), the schedule checked again."""
    # The scheduler never blocks on Redis, so its connection keeps the short timeouts
    # (the runtime's has none, for RQ workers' blocking reads): a Redis that vanished
    # without closing the connection (a failover to another host) is noticed in seconds.
    connection = connect(url)
    outage = RedisOutage("scheduler", log)
    try:
        while True:
            try:
                serve(make_scheduler(connection, interval), jobs, key_prefix, interval)
            except UNAVAILABLE as exc:
                outage.wait_until_back(connection.ping, exc)
    except Stop:
        return
    finally:
        connection.close()


def main() -> None:
    from runtime import bootstrap

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--register-only", action="store_true", help="register and exit")
    parser.add_argument("--interval", type=int, default=1, help="seconds between scheduler polls")
    arguments = parser.parse_args()
    context = bootstrap()
    jobs = periodic_jobs(context.settings)
    prefix = context.settings.storage.redis_key_prefix
    if arguments.register_only:
        register_periodic_jobs(context.redis, jobs, prefix)
        return
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    run(context.settings.storage.redis_url, jobs, prefix, arguments.interval)


if __name__ == "__main__":
    main()
