"""The RQ queues, one per priority, drained critical first, then `maintenance`; and the one
way to build what reads or writes jobs: the queues, the workers and the scheduler.

Queue names are the priority names, so that rq-dashboard shows the same words as the API,
and `maintenance`: the periodic housekeeping that no delivery waits for (Expo receipts,
retention, the purge of stale tokens). A worker serves it last by default, so a backlog
of pushes goes first and an idle worker still does the housekeeping; a deployment may
give it workers of its own (`python -m workers.run --queues maintenance`) and keep the
others on the pushes (`--queues critical,high,normal,low`).

Jobs are JSON, never pickle. RQ's default serializer unpickles whatever it finds in Redis, so
anyone who could write to Redis could run code in a worker (or in rq-dashboard). Here a job
is a dotted path and plain values (ids, strings, numbers, lists, dicts), and a worker runs a
job only if it names a function of the `jobs` package, with no callbacks or webhooks: a
JSON job naming `os.system` is as dead as a pickle. Everything that builds a queue, a worker
or the scheduler goes through this module (`queue`, `all_queues`, `make_worker`,
`make_scheduler`); rq-dashboard reads the jobs as JSON too (`--json`, in the Procfile).
A job's return value is stored as JSON: return numbers, strings or dicts of them.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import Sequence
from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.exceptions import DeserializationError
from rq.job import Job
from rq.serializers import JSONSerializer, resolve_serializer
from rq.utils import import_attribute
from rq_scheduler import Scheduler

from core.catalog import Priority

log = logging.getLogger(__name__)

# Workers listen in this order: RQ takes from the first non-empty queue.
QUEUE_ORDER: tuple[Priority, ...] = (
    Priority.CRITICAL,
    Priority.HIGH,
    Priority.NORMAL,
    Priority.LOW,
)
MAINTENANCE_QUEUE = "maintenance"
# What a worker serves when not told otherwise, in this order.
WORKER_QUEUES: tuple[str, ...] = (*(p.value for p in QUEUE_ORDER), MAINTENANCE_QUEUE)

# The one serializer of every queue, worker, the scheduler and rq-dashboard (`--json`).
SERIALIZER = JSONSerializer

# What a worker runs: a public function of the `jobs` package (architecture.md: "only the
# functions RQ runs"), named by the dotted path where it is defined. Only modules of `jobs`
# are imported to check a name; anything else (`os.system`, `jobs.delivery.os.system`, a
# class, a method) fails the job without being called. New jobs need no registration.
JOBS_PACKAGE = "jobs"
_JOB_PATH = re.compile(rf"^{JOBS_PACKAGE}(\.[a-z][a-z0-9_]*)+$")
_also_allowed: set[str] = set()


def allow_job(dotted_path: str) -> None:
    """Let this process's workers run one function outside `jobs` (the benchmark's baseline
    job). The list is the process's own: nothing in Redis can add to it."""
    _also_allowed.add(dotted_path)


@functools.lru_cache(maxsize=256)
def _defined_in_jobs(name: str) -> bool:
    if not _JOB_PATH.match(name):
        return False
    try:
        function = import_attribute(name)
    except (ImportError, AttributeError, ValueError):
        return False
    return inspect.isfunction(function) and (
        f"{function.__module__}.{function.__qualname__}" == name
    )


def is_pulse_job(name: object) -> bool:
    """Whether a worker may run the function a job names."""
    return isinstance(name, str) and (name in _also_allowed or _defined_in_jobs(name))


class ForbiddenJobError(RuntimeError):
    """A job names a function that is not one of Pulse's jobs, or asks for a callback or a
    webhook: the worker fails it, having called nothing (nor imported anything outside
    `jobs`)."""


def _json_only(serializer: Any) -> Any:
    if serializer is not None and resolve_serializer(serializer) is not SERIALIZER:
        raise ValueError(f"Pulse's jobs are JSON only, not {serializer!r}")
    return SERIALIZER


class PulseJob(Job):
    """An RQ job that is always read and written as JSON and runs only an allowed function.

    rq-scheduler has no serializer option: it builds and reads its jobs through this class."""

    def __init__(
        self, id: str | None = None, connection: redis.Redis | None = None, serializer: Any = None
    ):
        super().__init__(id, connection=connection, serializer=_json_only(serializer))

    @property
    def func(self) -> Any:
        name = self.func_name
        if not is_pulse_job(name) or self.instance is not None:
            raise ForbiddenJobError(f"job {self.id} names {name!r}, which is not a Pulse job")
        if self.webhooks:
            raise ForbiddenJobError(f"job {self.id} asks for webhooks; Pulse's jobs have none")
        return super().func

    def _no_callback(self, name: str | None) -> None:
        if name:
            raise ForbiddenJobError(f"job {self.id} names a callback {name!r}; Pulse has none")

    @property
    def success_callback(self) -> Any:
        self._no_callback(self._success_callback_name)
        return None

    @property
    def failure_callback(self) -> Any:
        self._no_callback(self._failure_callback_name)
        return None

    @property
    def stopped_callback(self) -> Any:
        self._no_callback(self._stopped_callback_name)
        return None

    def send_webhooks(self, status: Any, *, exc_string: str | None = None) -> None:
        """Never: a webhook read from Redis would make the worker call any URL."""


class PulseQueue(Queue):
    """An RQ queue of PulseJobs, always JSON (whoever builds it: RQ's worker, rq-scheduler)."""

    job_class = PulseJob

    def __init__(self, name: str = "default", *args: Any, serializer: Any = None, **kwargs: Any):
        super().__init__(name, *args, serializer=_json_only(serializer), **kwargs)


def queue(name: Priority | str, connection: redis.Redis) -> Queue:
    """A queue by its name: a priority, or MAINTENANCE_QUEUE."""
    name = str(name)
    if name not in WORKER_QUEUES:
        raise ValueError(f"no queue {name!r}: the queues are {', '.join(WORKER_QUEUES)}")
    return PulseQueue(name, connection=connection)


def all_queues(connection: redis.Redis) -> list[Queue]:
    """Every queue, in the order a default worker serves them."""
    return [queue(name, connection) for name in WORKER_QUEUES]


def parse_queue_names(text: str) -> tuple[str, ...]:
    """ "critical,high" -> ("critical", "high"), in the order given; ValueError naming an
    unknown or repeated one."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise ValueError("name at least one queue")
    unknown = [name for name in names if name not in WORKER_QUEUES]
    if unknown:
        raise ValueError(
            f"unknown queue(s) {', '.join(unknown)}: the queues are {', '.join(WORKER_QUEUES)}"
        )
    if len(set(names)) != len(names):
        raise ValueError("a queue is named twice")
    return names


def make_worker(
    connection: redis.Redis,
    name: str | None = None,
    queues: Sequence[Queue | str] | None = None,
) -> SimpleWorker:
    """A worker on every queue (WORKER_QUEUES: critical first, maintenance last), or on
    `queues` (Queues or names) in the order given, running jobs in-process (RQ's
    SimpleWorker: no fork per job)."""
    chosen = (
        [q if isinstance(q, Queue) else queue(q, connection) for q in queues]
        if queues is not None
        else all_queues(connection)
    )
    return SimpleWorker(
        chosen,
        connection=connection,
        name=name,
        serializer=SERIALIZER,
        job_class=PulseJob,
        queue_class=PulseQueue,
    )


class PulseScheduler(Scheduler):
    """rq-scheduler's Scheduler on PulseJobs and PulseQueues (it takes no serializer), which
    drops a scheduled job it cannot read as JSON instead of failing on it at every poll."""

    def enqueue_job(self, job: Job) -> None:
        try:
            job.func_name  # noqa: B018  (reads the job's data: JSON or an error)
        except DeserializationError:
            log.error("event=scheduled_job_unreadable id=%s action=dropped", job.id)
            self.cancel(job)
            return
        super().enqueue_job(job)


def make_scheduler(connection: redis.Redis, interval: float = 60) -> Scheduler:
    return PulseScheduler(
        connection=connection, interval=interval, job_class=PulseJob, queue_class=PulseQueue
    )
