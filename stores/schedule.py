"""rq-scheduler's schedule as Pulse checks it, in one round trip: which periodic jobs are
missing (a Redis that came back empty, a failover to an empty replica, an eviction) and
which are overdue (no scheduler has moved them on).

scheduler.py records the ids and intervals it registered (`record`), checks its own ids on
every loop (`missing`) and registers again whatever is gone; /readyz reports `report()`.
The record lives in Redis: when Redis comes back empty it is gone too, which reads as
"missing" until the scheduler has registered again (within a second).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import redis
from rq.job import Job
from rq_scheduler import Scheduler

from core import keys

# A periodic job whose next run is this far in the past has no scheduler moving it (the
# scheduler polls every second; a restart takes a few).
OVERDUE_AFTER_SECONDS = 30


def record(connection: redis.Redis, prefix: str, intervals: Mapping[str, int]) -> None:
    """Remember the periodic jobs just registered (replacing the previous record)."""
    pipe = connection.pipeline(transaction=True)
    pipe.delete(keys.schedule(prefix))
    if intervals:
        pipe.hset(keys.schedule(prefix), mapping=dict(intervals))
    pipe.execute()


def _next_runs(connection: redis.Redis, ids: list[str], prefix: str) -> tuple[bool, list]:
    pipe = connection.pipeline(transaction=False)
    pipe.exists(keys.schedule(prefix))
    for job_id in ids:
        pipe.zscore(Scheduler.scheduled_jobs_key, job_id)
        pipe.exists(Job.key_for(job_id))
    results = pipe.execute()
    recorded = bool(results[0])
    # A job is scheduled when it is in rq-scheduler's sorted set and its hash exists.
    return recorded, [
        score if exists else None
        for score, exists in zip(results[1::2], results[2::2], strict=True)
    ]


def missing(connection: redis.Redis, prefix: str, ids: Iterable[str]) -> list[str]:
    """The ids among `ids` that rq-scheduler would not run; all of them if the record is gone
    (so that the next registration writes it again). One round trip."""
    wanted = list(ids)
    recorded, runs = _next_runs(connection, wanted, prefix)
    if not recorded:
        return wanted
    return [job_id for job_id, run in zip(wanted, runs, strict=True) if run is None]


def report(connection: redis.Redis, prefix: str, now: float | None = None) -> str:
    """What /readyz says of the schedule: `ok`; `missing` (nothing recorded: never
    registered, or Redis came back empty); `missing: <ids>`; or `overdue: <ids>` (no
    scheduler is moving them on). Two round trips."""
    intervals = connection.hgetall(keys.schedule(prefix))
    if not intervals:
        return "missing"
    ids = sorted(key.decode() if isinstance(key, bytes) else str(key) for key in intervals)
    _, runs = _next_runs(connection, ids, prefix)
    gone = [job_id for job_id, run in zip(ids, runs, strict=True) if run is None]
    if gone:
        return "missing: " + ", ".join(gone)
    limit = (time.time() if now is None else now) - OVERDUE_AFTER_SECONDS
    late = [job_id for job_id, run in zip(ids, runs, strict=True) if run < limit]
    if late:
        return "overdue: " + ", ".join(late)
    return "ok"
