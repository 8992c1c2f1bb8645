"""Periodic clean-up jobs. Each is idempotent and bounded: safe to run twice or concurrently.

`apply_retention` removes what has been kept long enough (docs/pipeline.md, "Retention"):
every step works in batches of at most `batch_size` rows, each batch one statement in its
own transaction, at most `max_batches` batches a step a run; what is left waits for the
next run. Each batch first takes a transaction-scoped advisory lock named after its step,
without waiting: when two runs overlap (two schedulers, a slow run), the second leaves a
step the first is working on, so deletes never queue behind each other's row locks.
Within a batch, FOR UPDATE SKIP LOCKED leaves rows another transaction holds for later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from core.retention import cutoffs
from models.activity import delete_activity_before
from models.db import db
from models.locks import try_transaction_lock
from models.notifications import delete_finished_before, expire_unclaimed
from models.sends import delete_sends_without_notifications
from models.tokens import deactivate_token, delete_inactive_before, lock_stale_tokens
from runtime import current_runtime

log = logging.getLogger(__name__)

PURGE_BATCH = 5_000
RETENTION_BATCH = 5_000
RETENTION_MAX_BATCHES = 20
STALE_REASON = "stale"


def purge_inactive_tokens(older_than_days: int = 30) -> int:
    """Delete device tokens that have been inactive for `older_than_days`, in bounded
    batches; returns how many were deleted. Deliveries keep their rows (token_id -> NULL)."""
    cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
    deleted = 0
    while True:
        with db.session_scope() as session:
            count = delete_inactive_before(session, cutoff, PURGE_BATCH)
        deleted += count
        if count < PURGE_BATCH:
            break
    log.info("event=inactive_tokens_purged count=%d older_than_days=%d", deleted, older_than_days)
    return deleted


def apply_retention(
    batch_size: int = RETENTION_BATCH, max_batches: int = RETENTION_MAX_BATCHES
) -> dict[str, int]:
    """One retention run; returns what each step did. In order: waiting notifications
    whose expires_at passed are marked expired; finished notifications older than
    NOTIFICATION_RETENTION_DAYS go with their deliveries; then the sends left without a
    notification; user activity older than ACTIVITY_RETENTION_DAYS; and active tokens not
    used for TOKEN_STALE_DAYS are deactivated (reason `stale`). Processed real-time events
    have their own path: the events sweep (jobs.events.sweep_realtime_events)."""
    settings = current_runtime().settings
    now = datetime.now(UTC)
    # The one place the cut-offs are taken. Issue #12 (the engagement rollups) gates them
    # here: its rollup step will pass `rolled_up_through=<what the rollups have counted>`,
    # and no notification, delivery or activity row is removed before it is rolled up.
    cut = cutoffs(settings.retention, now, rolled_up_through=None)
    counts = {"deliveries_deleted": 0}

    def notifications(session: Session) -> int:
        deleted, deliveries = delete_finished_before(session, cut.notifications, batch_size)
        counts["deliveries_deleted"] += deliveries
        return deleted

    def stale_tokens(session: Session) -> int:
        ids = lock_stale_tokens(session, cut.token_stale, batch_size)
        for token_id in ids:
            deactivate_token(
                session, token_id, STALE_REASON, now, unless_used_after=cut.token_stale
            )
        return len(ids)

    def run(step: str, batch: Callable[[Session], int]) -> int:
        return _in_batches(step, batch, batch_size, max_batches)

    counts["expired"] = run("expire", lambda s: expire_unclaimed(s, now, batch_size))
    counts["notifications_deleted"] = run("notifications", notifications)
    counts["sends_deleted"] = run(
        "sends", lambda s: delete_sends_without_notifications(s, cut.notifications, batch_size)
    )
    counts["activity_deleted"] = run(
        "activity", lambda s: delete_activity_before(s, cut.activity, batch_size)
    )
    counts["tokens_deactivated"] = run("stale_tokens", stale_tokens)
    log.info("event=retention_applied %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def _in_batches(
    step: str, batch: Callable[[Session], int], batch_size: int, max_batches: int
) -> int:
    """Run `batch` (one statement, at most `batch_size` rows) in its own transaction, again
    while batches come back full, at most `max_batches` times. Returns the rows done."""
    done = 0
    for _ in range(max_batches):
        with db.session_scope() as session:
            if not try_transaction_lock(session, f"pulse:retention:{step}"):
                log.info("event=retention_step_busy step=%s", step)
                break
            count = batch(session)
        done += count
        if count < batch_size:
            break
    return done
