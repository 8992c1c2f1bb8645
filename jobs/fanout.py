"""The all-users fan-out: one page of users per job, each page committed then enqueued,
the next page as a new job, so that no job is long and a crash resumes at its page."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from intake.dispatch import dispatch_page
from models.db import db
from models.sends import fan_out_page
from runtime import current_runtime


def fan_out_send(send_id: str, after_user_id: str | None = None) -> int:
    """Create the rows of one page of an all-users send (idempotent: a row per user and
    send), enqueue their deliveries and the next page; returns the rows created."""
    runtime = current_runtime()
    with db.session_scope() as session:
        ids, last, priority = fan_out_page(
            session, uuid.UUID(send_id), after_user_id, datetime.now(UTC)
        )
    dispatch_page(
        runtime.redis,
        uuid.UUID(send_id),
        ids,
        last,
        priority,
        runtime.settings.delivery.batch_size,
    )
    return len(ids)
