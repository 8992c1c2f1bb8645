"""Liveness and readiness probes for orchestrators and load balancers."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint
from sqlalchemy import text

from api.envelope import ok
from api.errors import RETRY_AFTER_SECONDS, error_body
from models.db import db
from runtime import current_runtime

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


@blp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int] | tuple[dict[str, Any], int, dict[str, str]]:
    """PostgreSQL and Redis answer; otherwise 503 naming what is down, with the Retry-After
    the API's own 503 `unavailable` answers carry."""
    problems = {
        name: problem
        for name, problem in (("postgresql", _check_postgres()), ("redis", _check_redis()))
        if problem
    }
    if problems:
        message = "Not ready: " + ", ".join(sorted(problems)) + " down."
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return error_body("not_ready", message, problems), 503, headers
    return ok({"status": "ready", "postgresql": "ok", "redis": "ok"}), 200
