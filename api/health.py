"""Liveness and readiness probes for orchestrators and load balancers."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Blueprint
from sqlalchemy import text

from api.envelope import ok
from api.errors import RETRY_AFTER_SECONDS, error_body
from models.db import db
from runtime import current_runtime
from stores import schedule

log = logging.getLogger(__name__)
blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz() -> dict[str, Any]:
    """The process is up and answering."""
    return ok({"status": "ok"})


def _check_postgres() -> str | None:
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready"; the reason is logged
        log.warning(
            "event=readiness_failed dependency=postgresql error_type=%s", type(exc).__name__
        )
        return f"unreachable ({type(exc).__name__})"
    return None


def _check_redis() -> str | None:
    try:
        current_runtime().redis.ping()
    except Exception as exc:
        log.warning("event=readiness_failed dependency=redis error_type=%s", type(exc).__name__)
        return f"unreachable ({type(exc).__name__})"
    return None


def _schedule() -> str:
    """The periodic jobs (the outbox sweep above all): a report, never a reason to take this
    instance out of rotation: it accepts sends either way (they wait in PostgreSQL), and
    only the scheduler can put the schedule back (it does so within a second)."""
    runtime = current_runtime()
    try:
        return schedule.report(runtime.redis, runtime.settings.storage.redis_key_prefix)
    except redis.RedisError as exc:  # Redis went away since the ping
        log.warning("event=readiness_failed dependency=schedule error_type=%s", type(exc).__name__)
        return f"unknown ({type(exc).__name__})"


@blp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int] | tuple[dict[str, Any], int, dict[str, str]]:
    """PostgreSQL and Redis answer; otherwise 503 naming what is down, with the Retry-After
    the API's own 503 `unavailable` answers carry. When they do, `schedule` says whether the
    periodic jobs are scheduled and moving: `ok`, `missing` (Redis came back empty and no
    scheduler has registered them again, or none ever did), `missing: <ids>`, or
    `overdue: <ids>` (no scheduler is running); it does not change the status."""
    problems = {
        name: problem
        for name, problem in (("postgresql", _check_postgres()), ("redis", _check_redis()))
        if problem
    }
    if problems:
        message = "Not ready: " + ", ".join(sorted(problems)) + " down."
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return error_body("not_ready", message, problems), 503, headers
    return ok({"status": "ready", "postgresql": "ok", "redis": "ok", "schedule": _schedule()}), 200
