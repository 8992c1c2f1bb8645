"""Typing indicators: who may see a typing signal (only the other person of a live match's
conversation), forwarding it, and stopping it on timeout or disconnect.

The throttle and the timeout are rules in core.typing_indicator; the state is in Redis
(stores.typing). Never forwards anything to someone who is not the conversation's
other participant, and never logs what is typed.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from core.catalog import ServerEvent, TypingStopReason, user_room
from core.matching import is_active_match, other_participant
from core.typing_indicator import stops_at
from models.db import db
from models.users import match_by_conversation
from runtime import Runtime
from stores.typing import Conversation


def conversation(ctx: Runtime, conversation_id: str) -> Conversation | None:
    """The conversation's match, from the cache or the matches table."""
    cached = ctx.typing.cached_conversation(conversation_id)
    if cached is not None:
        return cached
    with db.session_scope() as session:
        match = match_by_conversation(session, conversation_id)
        if match is None:
            return None
        found = Conversation(match.user_a_id, match.user_b_id, match.status, match.expires_at)
    ctx.typing.cache_conversation(conversation_id, found)
    return found


def recipient_of(
    ctx: Runtime, sender_id: str, conversation_id: str, now: float
) -> str | None:
    """The other participant, when the sender is in a live match with this conversation."""
    found = conversation(ctx, conversation_id)
    if found is None or not is_active_match(
        found.status, found.expires_at, datetime.fromtimestamp(now, UTC)
    ):
        return None
    return other_participant(sender_id, found.user_a_id, found.user_b_id)


def forward(
    ctx: Runtime,
    event: ServerEvent,
    sid: str,
    sender_id: str,
    recipient_id: str,
    conversation_id: str,
    now: float,
    extra: dict[str, Any] | None = None,
) -> None:
    """typing_start / typing_progress go to every connection of the recipient, and arm
    the automatic stop; typing_stop disarms it."""
    if event is ServerEvent.TYPING_STOP:
        ctx.typing.stop(sid, conversation_id)
        payload: dict[str, Any] = {"reason": TypingStopReason.STOPPED.value}
    else:
        deadline = stops_at(now, ctx.settings.realtime.typing_timeout_seconds)
        ctx.typing.start(sid, conversation_id, recipient_id, sender_id, deadline)
        payload = dict(extra or {})
    payload.update({"conversation_id": conversation_id, "user_id": sender_id})
    ctx.emit(event, payload, to=user_room(recipient_id))


def stop_all_typing(
    ctx: Runtime, sid: str, sender_id: str, reason: TypingStopReason
) -> None:
    for conversation_id, (recipient_id, _) in ctx.typing.stop_all(sid).items():
        ctx.emit(
            ServerEvent.TYPING_STOP,
            {"conversation_id": conversation_id, "user_id": sender_id, "reason": reason.value},
            to=user_room(recipient_id),
        )


def stop_expired_typing(ctx: Runtime, now: float | None = None) -> int:
    """typing_stop (reason timeout) for every typing with no progress within the timeout."""
    now = time.time() if now is None else now
    expired = ctx.typing.claim_expired(now)
    for _sid, conversation_id, recipient_id, sender_id in expired:
        ctx.emit(
            ServerEvent.TYPING_STOP,
            {
                "conversation_id": conversation_id,
                "user_id": sender_id,
                "reason": TypingStopReason.TIMEOUT.value,
            },
            to=user_room(recipient_id),
        )
    return len(expired)
