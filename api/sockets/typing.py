"""Typing events from the client: typing_start, typing_progress (throttled per
connection), typing_stop. Each goes only to the other participant of the conversation's
live match; anyone else's attempt gets a `forbidden` error. What is typed is never sent
here (only counts), and nothing of it is logged.
"""

from __future__ import annotations

import time
from typing import Any

from api.sockets.guard import client_event, send_error
from api.sockets.local import LocalConnection
from api.sockets.schemas import ConversationSchema, TypingProgressSchema
from core.catalog import ClientEvent, ServerEvent, SocketErrorCode
from core.typing_indicator import progress_allowed
from realtime.typing import forward, recipient_of
from runtime import Runtime


def _relay(
    ctx: Runtime,
    conn: LocalConnection,
    sid: str,
    event: ServerEvent,
    data: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    now = time.time()
    conversation_id = data["conversation_id"]
    recipient = recipient_of(ctx, conn.user_id, conversation_id, now)
    if recipient is None:
        return send_error(
            sid,
            SocketErrorCode.FORBIDDEN,
            "You are not in a live match with this conversation.",
            event.value,
            {"conversation_id": conversation_id},
        )
    forward(ctx, event, sid, conn.user_id, recipient, conversation_id, now, extra)
    return {"ok": True}


@client_event(ClientEvent.TYPING_START, ConversationSchema)
def typing_start(
    ctx: Runtime, conn: LocalConnection, sid: str, data: dict[str, Any]
) -> dict[str, Any]:
    return _relay(ctx, conn, sid, ServerEvent.TYPING_START, data)


@client_event(ClientEvent.TYPING_PROGRESS, TypingProgressSchema)
def typing_progress(
    ctx: Runtime, conn: LocalConnection, sid: str, data: dict[str, Any]
) -> dict[str, Any]:
    now = time.monotonic()
    if not progress_allowed(
        conn.last_progress, now, ctx.settings.realtime.typing_progress_interval_ms
    ):
        return {"ok": True, "throttled": True}
    conn.last_progress = now
    extra = {"char_count": data["char_count"], "duration_ms": data["duration_ms"]}
    return _relay(ctx, conn, sid, ServerEvent.TYPING_PROGRESS, data, extra)


@client_event(ClientEvent.TYPING_STOP, ConversationSchema)
def typing_stop(
    ctx: Runtime, conn: LocalConnection, sid: str, data: dict[str, Any]
) -> dict[str, Any]:
    return _relay(ctx, conn, sid, ServerEvent.TYPING_STOP, data)
