"""Periodic clean-up jobs. Each is idempotent and bounded: safe to run twice or concurrently."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from models.db import db
from models.tokens import PushToken

log = logging.getLogger(__name__)

PURGE_BATCH = 5_000


def purge_inactive_tokens(older_than_days: int = 30) -> int:
    """Delete device tokens that have been inactive for `older_than_days`, in bounded
    batches; returns how many were deleted. Deliveries keep their rows (token_id -> NULL)."""
    cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
    deleted = 0
    while True:
        with db.session_scope() as session:
            ids = (
                select(PushToken.id)
                .where(PushToken.is_active.is_(False), PushToken.deactivated_at < cutoff)
                .limit(PURGE_BATCH)
            )
            count = session.execute(delete(PushToken).where(PushToken.id.in_(ids))).rowcount
        deleted += count
        if count < PURGE_BATCH:
            break
    log.info("event=inactive_tokens_purged count=%d older_than_days=%d", deleted, older_than_days)
    return deleted
