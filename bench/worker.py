"""The benchmark's worker: Pulse's own (`python -m workers.run`), which may also run the
baseline's job (bench/baseline.py). Production workers refuse any function that is not one
of Pulse's jobs (intake.queues.JOBS)."""

from __future__ import annotations

from intake.queues import allow_job
from workers import run

BASELINE_JOB = "bench.baseline.deliver_one"


def main() -> None:
    allow_job(BASELINE_JOB)
    run.main()


if __name__ == "__main__":
    main()
