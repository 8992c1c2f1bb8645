"""The one wrapper every client event goes through: rate limit, payload schema, activity,
and errors. Bad input (an unknown event, a wrong payload, a flood) gets an `error` event
back on that connection only; no exception ever escapes a handler.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import request
from marshmallow import Schema, ValidationError

from api.extensions import socketio
from api.sockets.local import CONNECTIONS, LocalConnection
from core.catalog import ACTIVE_CLIENT_EVENTS, ClientEvent, ServerEvent, SocketErrorCode, values
from core.socket_limits import retry_after_ms, take
from realtime.presence import publish_presence
from runtime import Runtime, current_runtime

log = logging.getLogger(__name__)

Handler = Callable[[Runtime, LocalConnection, str, dict[str, Any]], Any]
MAX_EVENT_NAME_IN_ERROR = 64


def error_payload(
    code: SocketErrorCode, message: str, event: str | None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"code": code.value, "message": message, "event": event, "details": details or {}}


def send_error(
    sid: str,
    code: SocketErrorCode,
    message: str,
    event: str | None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An `error` event to this connection only; returns the ack for the client's callback."""
    payload = error_payload(code, message, event, details)
    socketio.server.emit(ServerEvent.ERROR.value, payload, to=sid)
    return {"ok": False, "error": payload}


def admit(conn: LocalConnection, sid: str, event: str) -> dict[str, Any] | None:
    """Spend a token of the connection's bucket; over the limit, an error (sent at most
    once a second, so that a flood is not answered by a flood)."""
    ctx = current_runtime()
    now = time.monotonic()
    settings = ctx.settings
    allowed, conn.bucket = take(
        conn.bucket, now, settings.realtime.event_rate_per_second, settings.realtime.event_burst
    )
    if allowed:
        return None
    wait = retry_after_ms(conn.bucket, settings.realtime.event_rate_per_second)
    answer = error_payload(
        SocketErrorCode.RATE_LIMITED,
        f"Too many events: at most {settings.realtime.event_rate_per_second} a second.",
        event,
        {"retry_after_ms": wait},
    )
    if now - conn.limited_notice >= 1.0:
        conn.limited_notice = now
        socketio.server.emit(ServerEvent.ERROR.value, answer, to=sid)
    return {"ok": False, "error": answer}


def note_activity(
    ctx: Runtime, conn: LocalConnection, sid: str, publish: bool = True
) -> None:
    """The user did something on this connection: written at most once per tenth of
    AWAY_AFTER_SECONDS, and presence recomputed then (away -> online) unless the handler does it
    anyway."""
    now = time.monotonic()
    # A tenth of AWAY_AFTER_SECONDS (at most 30 s): away is never declared more than that early.
    interval = min(30.0, ctx.settings.realtime.away_after_seconds / 10)
    if now - conn.last_activity_write < interval:
        return
    conn.last_activity_write = now
    wall = time.time()
    ctx.connections.touch(sid, conn.user_id, wall, activity=True)
    if publish:
        publish_presence(ctx, conn.user_id, wall)


def client_event(event: ClientEvent, schema: type[Schema] | None) -> Callable[[Handler], Handler]:
    """Register `handler(ctx, conn, sid, payload)` for `event`, behind the guard."""

    loader = schema() if schema is not None else None  # schemas are reusable: build once

    def decorator(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def on_event(*args: Any) -> Any:
            sid = request.sid  # type: ignore[attr-defined]
            conn = CONNECTIONS.get(sid)
            if conn is None:
                return send_error(sid, SocketErrorCode.SERVER_ERROR, "Not connected.", event)
            refused = admit(conn, sid, event)
            if refused is not None:
                return refused
            data: Any = args[0] if len(args) == 1 else (list(args) if args else None)
            if loader is not None:
                if data is None:
                    data = {}
                if not isinstance(data, dict):
                    return send_error(
                        sid,
                        SocketErrorCode.INVALID_PAYLOAD,
                        f"The {event.value} payload must be a JSON object.",
                        event,
                    )
                try:
                    data = loader.load(data)
                except ValidationError as exc:
                    fields = exc.messages if isinstance(exc.messages, dict) else {"_": exc.messages}
                    return send_error(
                        sid,
                        SocketErrorCode.INVALID_PAYLOAD,
                        f"Invalid {event.value} payload: {', '.join(sorted(fields))}.",
                        event,
                        {"fields": fields},
                    )
            ctx = current_runtime()
            try:
                if event in ACTIVE_CLIENT_EVENTS:
                    note_activity(ctx, conn, sid, publish=event is not ClientEvent.PRESENCE_UPDATE)
                return handler(ctx, conn, sid, data)
            except Exception as exc:
                log.exception(
                    "event=socket_handler_failed socket_event=%s user_id=%s error_type=%s",
                    event.value,
                    conn.user_id,
                    type(exc).__name__,
                )
                return send_error(
                    sid, SocketErrorCode.SERVER_ERROR, "Something went wrong on our side.", event
                )

        socketio.on(event.value)(on_event)
        return handler

    return decorator


@socketio.on("*")
def unknown_event(event: Any, *_args: Any) -> dict[str, Any]:
    """Any event without a handler: an error naming it, and the events that exist."""
    sid = request.sid  # type: ignore[attr-defined]
    name = str(event)[:MAX_EVENT_NAME_IN_ERROR]
    conn = CONNECTIONS.get(sid)
    if conn is not None:
        refused = admit(conn, sid, name)
        if refused is not None:
            return refused
    return send_error(
        sid,
        SocketErrorCode.UNKNOWN_EVENT,
        f"Unknown event {name!r}.",
        name,
        {"known_events": values(ClientEvent)},
    )


@socketio.on_error_default
def last_resort(exc: Exception) -> dict[str, Any]:
    """Anything that still escaped (e.g. in connect bookkeeping): logged, answered."""
    log.error("event=socket_error error_type=%s", type(exc).__name__)
    sid = getattr(request, "sid", None)
    if sid is None:
        return {"ok": False}
    return send_error(sid, SocketErrorCode.SERVER_ERROR, "Something went wrong on our side.", None)
