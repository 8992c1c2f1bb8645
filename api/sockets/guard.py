"""The one wrapper every client event goes through: rate limit, payload shape and schema,
activity, and errors. Bad input (an unknown event, a wrong payload, one nested too deeply, a
flood) gets an `error` event back on that connection only; no exception ever escapes a
handler. PostgreSQL or Redis being down is an `error` with code `unavailable` naming it.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from engineio import json as engineio_json
from flask import request
from flask_socketio import ConnectionRefusedError
from marshmallow import Schema, ValidationError

from api.errors import (
    DEPENDENCY_NAMES,
    RETRY_AFTER_SECONDS,
    ApiError,
    TooDeeplyNested,
    unavailable_dependency,
)
from api.extensions import socketio
from api.requests import MAX_JSON_DEPTH, check_json
from api.sockets.local import CONNECTIONS, LocalConnection
from core.catalog import ACTIVE_CLIENT_EVENTS, ClientEvent, ServerEvent, SocketErrorCode, values
from core.socket_limits import retry_after_ms, take
from realtime.presence import publish_presence
from runtime import Runtime, current_runtime

log = logging.getLogger(__name__)

Handler = Callable[[Runtime, LocalConnection, str, dict[str, Any]], Any]
MAX_EVENT_NAME_IN_ERROR = 64


class TooDeep(dict[str, Any]):
    """What a packet whose payload is nested beyond what the JSON parser can recurse into
    is decoded to (see PayloadJson), so that the guard answers it like any payload nested
    more than MAX_JSON_DEPTH levels deep. A dict, so that it still serializes."""


_EVENT_NAME = re.compile(r'\s*\[\s*("(?:[^"\\]|\\.){0,256}")\s*,')


class PayloadJson:
    """The JSON module python-socketio decodes packets with: engine.io's (its integer cap
    included), except that a packet nested too deeply for the parser's recursion, which
    would otherwise die in the decoder with no answer to the client, is decoded to its
    event name and a TooDeep payload."""

    dumps = staticmethod(engineio_json.dumps)

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        try:
            return engineio_json.loads(text, **kwargs)
        except RecursionError:
            if isinstance(text, bytes):
                text = text.decode(errors="replace")
            head = _EVENT_NAME.match(text)
            if head is None:
                raise ValueError("the packet is nested too deeply") from None
            return [json.loads(head.group(1)), TooDeep()]


# Registered with the other handlers, before the gateway's init_app builds the server.
socketio.server_options.setdefault("json", PayloadJson)


def error_payload(
    code: SocketErrorCode,
    message: str,
    event: str | None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {"code": str(code), "message": message, "event": event, "details": details or {}}


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
            refused = check_payload(sid, event, data)
            if refused is not None:
                return refused
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
                return handler_failed(sid, event.value, conn.user_id, exc)

        socketio.on(event.value)(on_event)
        return handler

    return decorator


def check_payload(sid: str, event: ClientEvent, data: Any) -> dict[str, Any] | None:
    """The payload's shape, before its schema: nested at most MAX_JSON_DEPTH levels deep,
    and no value PostgreSQL could not store (U+0000, a lone surrogate, NaN); otherwise an
    `invalid_payload` error naming the problem."""
    problem: ApiError
    if isinstance(data, TooDeep):
        problem = TooDeeplyNested()
    else:
        try:
            check_json(data)
        except ApiError as exc:
            problem = exc
        else:
            return None
    if isinstance(problem, TooDeeplyNested):
        message = (
            f"The {event.value} payload nests arrays or objects more than "
            f"{MAX_JSON_DEPTH} levels deep."
        )
        details = {"max_depth": MAX_JSON_DEPTH}
    else:
        message = f"Invalid {event.value} payload: {problem.message}"
        details = problem.details
    return send_error(sid, SocketErrorCode.INVALID_PAYLOAD, message, event, details)


def unavailable_error(sid: str, event: str | None, dependency: str) -> dict[str, Any]:
    return send_error(
        sid,
        SocketErrorCode.UNAVAILABLE,
        f"{DEPENDENCY_NAMES[dependency]} is unavailable for a moment: "
        f"retry in {RETRY_AFTER_SECONDS} seconds.",
        event,
        {"dependency": dependency, "retry_after_ms": RETRY_AFTER_SECONDS * 1000},
    )


def handler_failed(sid: str, event: str, user_id: str, exc: Exception) -> dict[str, Any]:
    """A dependency that is down is an `unavailable` error naming it; anything else is a
    bug, logged with its trace and answered `server_error`."""
    dependency = unavailable_dependency(exc)
    if dependency is not None:
        log.warning(
            "event=socket_dependency_unavailable socket_event=%s user_id=%s dependency=%s"
            " error_type=%s",
            event,
            user_id,
            dependency,
            type(exc).__name__,
        )
        return unavailable_error(sid, event, dependency)
    log.exception(
        "event=socket_handler_failed socket_event=%s user_id=%s error_type=%s",
        event,
        user_id,
        type(exc).__name__,
    )
    return send_error(sid, SocketErrorCode.SERVER_ERROR, "Something went wrong on our side.", event)


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
    """Anything that still escaped (e.g. in connect bookkeeping): logged, answered. A
    connect that failed is refused (connect_error `unavailable` or `server_error`), never
    let in half made."""
    dependency = unavailable_dependency(exc)
    if dependency is not None:
        log.warning(
            "event=socket_dependency_unavailable dependency=%s error_type=%s",
            dependency,
            type(exc).__name__,
        )
    else:
        log.error("event=socket_error error_type=%s", type(exc).__name__)
    sid = getattr(request, "sid", None)
    event = getattr(request, "event", None) or {}
    if event.get("message") == "connect":
        if sid is not None:
            CONNECTIONS.pop(sid, None)
        if dependency is not None:
            raise ConnectionRefusedError(
                f"{SocketErrorCode.UNAVAILABLE.value}: {DEPENDENCY_NAMES[dependency]} is "
                f"unavailable for a moment: retry in {RETRY_AFTER_SECONDS} seconds.",
                {
                    "code": SocketErrorCode.UNAVAILABLE.value,
                    "dependency": dependency,
                    "retry_after_ms": RETRY_AFTER_SECONDS * 1000,
                },
            )
        raise ConnectionRefusedError(
            f"{SocketErrorCode.SERVER_ERROR}: Something went wrong on our side.",
            {"code": SocketErrorCode.SERVER_ERROR.value},
        )
    if sid is None:
        return {"ok": False}
    if dependency is not None:
        return unavailable_error(sid, event.get("message"), dependency)
    return send_error(sid, SocketErrorCode.SERVER_ERROR, "Something went wrong on our side.", None)
