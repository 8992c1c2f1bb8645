"""Rules about matches that authorize real-time features: who may see whose presence and
typing. Pure: rows' values and `now` in, a decision out; never a query."""

from __future__ import annotations

from datetime import datetime

from core.catalog import MatchStatus


def ordered_pair(first: str, second: str) -> tuple[str, str]:
    """Matches are stored with user_a_id < user_b_id."""
    return (first, second) if first < second else (second, first)


def is_active_match(status: str, expires_at: datetime | None, now: datetime) -> bool:
    """A match counts while it is matched and not past its expiry."""
    return status == MatchStatus.MATCHED and (expires_at is None or expires_at > now)


def other_participant(user_id: str, user_a_id: str, user_b_id: str) -> str | None:
    """The other person of a conversation, or None when `user_id` is not in it."""
    if user_id == user_a_id:
        return user_b_id
    if user_id == user_b_id:
        return user_a_id
    return None
