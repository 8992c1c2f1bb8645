"""The worker process: `python -m workers.run` drains the priority queues, critical first.

It runs jobs in-process (RQ's SimpleWorker): no fork per job. A job that kills the
process loses nothing: its rows are taken back by the outbox sweep.
"""

from __future__ import annotations

import argparse
import logging

from rq import SimpleWorker

from intake.queues import all_queues
from runtime import bootstrap

log = logging.getLogger(__name__)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run a Pulse worker on the priority queues.")
    parser.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    arguments = parser.parse_args()
    context = bootstrap()
    name = f"pulse-{context.node}"
    worker = SimpleWorker(all_queues(context.redis), connection=context.redis, name=name)
    log.info("event=worker_starting name=%s queues=%s", name, ",".join(worker.queue_names()))
    worker.work(with_scheduler=False, burst=arguments.burst)


if __name__ == "__main__":
    main()
