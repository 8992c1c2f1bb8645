"""The worker process: `python -m workers.run` drains the priority queues, critical first,
then the `maintenance` queue; `--queues maintenance` (or `--queues critical,high,normal,low`)
serves only the queues named, in that order (intake.queues).

It runs jobs in-process (RQ's SimpleWorker): no fork per job. A job that kills the
process loses nothing: its rows are taken back by the outbox sweep.

Redis going away does not stop it either. RQ's own loop ends on most Redis errors (and
retries a lost connection in place while dequeuing, with a log line per attempt): here a
lost Redis is carried out of RQ's loop (`RedisLost`), the process waits for Redis with a
capped, jittered backoff, logging one line when it goes and one when it is back
(`stores.client.RedisOutage`), then a fresh worker on fresh queues takes over. A Redis that
comes back empty costs nothing: the worker registers itself again (RQ would not), and the
rows of a job that failed meanwhile go back on the queues with the outbox sweep.

How a worker reports: its log (`event=redis_unavailable process=worker`, then
`event=redis_back`), and RQ's worker registry (`rq info`, rq-dashboard), which it keeps
current: an idle worker heartbeats at least every WORKER_TTL_SECONDS - 15 seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import signal
from collections.abc import Iterator, Sequence
from typing import Any

from rq import worker_registration
from rq.exceptions import StopRequested
from rq.worker import BaseWorker

from intake.queues import WORKER_QUEUES, make_worker, parse_queue_names
from runtime import Runtime, bootstrap
from stores.client import UNAVAILABLE, RedisOutage, connect

log = logging.getLogger(__name__)

# RQ's worker TTL (its default is 420): an idle worker waits for a job WORKER_TTL_SECONDS
# - 15 seconds at a time, then heartbeats (and registers again if Redis lost it), and a
# connection that went silent (a failover to another host) is given up after
# WORKER_TTL_SECONDS - 5 seconds.
WORKER_TTL_SECONDS = 60


class RedisLost(SystemExit):
    """A lost Redis on its way out of RQ's work loop, to `run`, which never lets it end the
    process. A SystemExit because that is what RQ's loop lets through untouched: any other
    exception is logged with a traceback and ends the loop from inside."""


@contextlib.contextmanager
def _carried_out() -> Iterator[None]:
    try:
        yield
    except UNAVAILABLE as exc:
        raise RedisLost(1) from exc


class _HandsOverLostRedis:
    """Mixed into the worker class intake.queues builds: each step of RQ's loop that talks
    to Redis raises RedisLost instead of what RQ would do with the error."""

    stop_signalled = False

    def check_for_suspension(self, burst: bool) -> None:
        with _carried_out():
            super().check_for_suspension(burst)  # type: ignore[misc]

    def run_maintenance_tasks(self) -> None:
        with _carried_out():
            super().run_maintenance_tasks()  # type: ignore[misc]

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        with _carried_out():
            super().heartbeat(timeout, pipeline)  # type: ignore[misc]

    def execute_job(self, job: Any, queue: Any) -> Any:
        with _carried_out():
            return super().execute_job(job, queue)  # type: ignore[misc]

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: Any = None) -> Any:
        with _carried_out():
            self._register_again_if_lost()
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)  # type: ignore[misc]

    def _register_again_if_lost(self) -> None:
        """RQ registers a worker once, at its start: after a Redis that came back empty it
        would work on unlisted (invisible to `rq info`, rq-dashboard and the registry
        cleanup). One SISMEMBER per dequeue."""
        worker: Any = self
        connection = worker.connection
        if connection.sismember(worker.redis_workers_keys, worker.key):
            return
        with connection.pipeline() as pipe:
            pipe.hset(worker.key, mapping=worker.serialize())
            worker_registration.register(worker, pipe)
            pipe.expire(worker.key, worker.worker_ttl + 60)
            pipe.execute()
        log.warning("event=worker_registered_again name=%s reason=registry_lost", worker.name)

    def request_stop(self, signum: int, frame: Any) -> None:
        """SIGTERM or SIGINT: RQ's warm shutdown, which may need Redis to note a busy worker's
        request; without Redis the worker stops at once (a job in flight is the lease's)."""
        self.stop_signalled = True
        try:
            super().request_stop(signum, frame)  # type: ignore[misc]
        except UNAVAILABLE:
            raise StopRequested from None


@functools.cache
def _guarded_class(base: type[BaseWorker]) -> type[BaseWorker]:
    return type(f"Pulse{base.__name__}", (_HandsOverLostRedis, base), {})


def guarded(worker: BaseWorker) -> BaseWorker:
    """`worker`, as intake.queues built it (queues, serializer, job class), with the
    overrides above, and its TTL and socket timeout set (WORKER_TTL_SECONDS)."""
    worker.__class__ = _guarded_class(type(worker))
    worker.worker_ttl = WORKER_TTL_SECONDS
    # RQ only ever raises the socket timeout (to its default TTL's): bring it to this one's.
    worker.connection.connection_pool.connection_kwargs["socket_timeout"] = (
        worker.connection_timeout
    )
    return worker


class _OutageLoggedOnce(logging.Filter):
    """RQ logs "could not connect to Redis instance ... retrying" at every attempt, from its
    dequeue loop and from its pub/sub thread; `run` logs the outage once instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "could not connect to Redis instance" not in record.getMessage()


def _discard(worker: BaseWorker) -> None:
    """What RQ's teardown could not do without Redis: stop the worker's pub/sub thread."""
    thread = getattr(worker, "pubsub_thread", None)
    if thread is not None:
        thread.stop()


def _stop(signum: int, _frame: Any) -> None:
    """SIGTERM or SIGINT before RQ's loop has installed its own (Redis down at start)."""
    log.info("event=worker_stopping signal=%d", signum)
    raise StopRequested


def run(
    context: Runtime, name: str, burst: bool = False, queues: Sequence[str] | None = None
) -> None:
    """Work on `queues` (names; every queue when None) until stopped (or, with `burst`,
    until they are empty), through any number of Redis outages."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    logging.getLogger("rq.worker").addFilter(_OutageLoggedOnce())
    outage = RedisOutage("worker", log)
    # Waiting for Redis asks with short timeouts (the worker's connection waits for jobs).
    probe = connect(context.settings.storage.redis_url)
    lost: BaseWorker | None = None  # a worker whose death RQ could not record
    try:
        while True:
            worker: BaseWorker | None = None
            try:
                if lost is not None:
                    # Redis is back with its data: mark the old one dead, so that its
                    # successor (the same name) may register.
                    lost.register_death()
                    lost = None
                worker = guarded(make_worker(context.redis, name, queues))
                log.info(
                    "event=worker_starting name=%s queues=%s", name, ",".join(worker.queue_names())
                )
                worker.work(with_scheduler=False, burst=burst)
                return
            except (RedisLost, *UNAVAILABLE) as exc:
                if worker is not None:
                    _discard(worker)
                    lost = worker
                    if worker.stop_signalled:
                        return
                cause = exc.__cause__ if isinstance(exc, RedisLost) else exc
                outage.wait_until_back(probe.ping, cause or exc)
                if lost is not None and lost.stop_signalled:
                    return
    except StopRequested:  # a signal while waiting for Redis (or before RQ's loop began)
        return
    finally:
        probe.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run a Pulse worker on Pulse's queues.")
    parser.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    parser.add_argument(
        "--queues",
        default=",".join(WORKER_QUEUES),
        help="comma-separated queue names, served in that order (default: %(default)s)",
    )
    arguments = parser.parse_args()
    try:
        queues = parse_queue_names(arguments.queues)
    except ValueError as exc:
        parser.error(str(exc))
    context = bootstrap()
    run(context, f"pulse-{context.node}", burst=arguments.burst, queues=queues)


if __name__ == "__main__":
    main()
