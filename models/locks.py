"""Transaction-scoped advisory locks: one holder at a time for a named piece of work, across
every process that shares the database, released when the transaction ends."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))")


def try_transaction_lock(session: Session, key: str) -> bool:
    """Take the lock named `key` for the rest of the caller's transaction, without waiting;
    False when another transaction holds it."""
    return bool(session.execute(TRY_LOCK, {"key": key}).scalar())
