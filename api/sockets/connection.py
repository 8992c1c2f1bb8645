"""Connect and disconnect: the JWT handshake (auth payload {token} or an Authorization
header), the room `user:<id>`, the connection's record in Redis, and the device's time
zone and locale when the auth payload carries them.

A refused handshake joins nothing and records nothing; its connect_error message names
the reason. The token itself never reaches a log line.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from flask import request
from flask_socketio import ConnectionRefusedError, join_room
from marshmallow import ValidationError

from api.auth import decode_token
from api.errors import Unauthorized
from api.extensions import socketio
from api.sockets.local import CONNECTIONS, LocalConnection
from api.sockets.schemas import HandshakeSchema
from core.catalog import Role, user_room
from core.socket_limits import full_bucket
from models.db import db
from models.users import ensure_user, record_device_report
from realtime.presence import connection_closed, connection_opened
from runtime import current_runtime
from stores.connections import ConnectionRecord

log = logging.getLogger(__name__)


def refuse(code: str, message: str, details: dict[str, Any] | None = None) -> None:
    """Socket.IO sends {message, data} as the client's connect_error."""
    raise ConnectionRefusedError(f"{code}: {message}", {"code": code, **(details or {})})


def handshake_token(auth: Any) -> str | None:
    if isinstance(auth, dict) and isinstance(auth.get("token"), str) and auth["token"].strip():
        token = auth["token"].strip()
        return token.removeprefix("Bearer ").strip()
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


@socketio.on("connect")
def on_connect(auth: Any = None) -> bool:
    token = handshake_token(auth)
    if token is None:
        refuse(
            "missing_token",
            "Send the JWT as the handshake's auth {token} or an 'Authorization: Bearer' header.",
        )
    try:
        principal = decode_token(token, current_runtime().settings)  # type: ignore[arg-type]
    except Unauthorized as exc:
        refuse(exc.code, exc.message)
    try:
        device = HandshakeSchema().load(auth if isinstance(auth, dict) else {})
    except ValidationError as exc:
        named = ", ".join(sorted(exc.messages)) if isinstance(exc.messages, dict) else "auth"
        refuse(
            "invalid_handshake",
            f"Invalid device fields in auth: {named}.",
            {"fields": exc.messages},
        )
    ctx = current_runtime()
    sid = request.sid  # type: ignore[attr-defined]
    user_id = principal.user_id
    now = time.time()
    if principal.role is not Role.SERVICE:
        with db.session_scope() as session:
            ensure_user(session, user_id)
            record_device_report(
                session,
                user_id,
                timezone=device.get("timezone"),
                locale=device.get("locale"),
                reported_at=datetime.fromtimestamp(now, UTC),
            )
    record = ConnectionRecord(
        sid=sid,
        user_id=user_id,
        device_id=device.get("device_id"),
        platform=device.get("platform"),
        app_version=device.get("app_version"),
        low_battery=bool(device.get("low_battery")),
        connected_at=now,
        last_seen=now,
        last_activity=now,
        node=ctx.node,
    )
    join_room(user_room(user_id))
    CONNECTIONS[sid] = LocalConnection(
        record=record,
        bucket=full_bucket(ctx.settings.realtime.event_burst, time.monotonic()),
        last_activity_write=time.monotonic(),
        low_battery=record.low_battery,
    )
    connection_opened(ctx, record)
    log.info(
        "event=socket_connected user_id=%s sid=%s platform=%s low_battery=%s",
        user_id,
        sid,
        record.platform,
        record.low_battery,
    )
    return True


@socketio.on("disconnect")
def on_disconnect(reason: Any = None) -> None:
    sid = request.sid  # type: ignore[attr-defined]
    conn = CONNECTIONS.pop(sid, None)
    if conn is None:
        return
    try:
        connection_closed(current_runtime(), conn.user_id, sid, conn.record.device_key, time.time())
    finally:
        log.info("event=socket_disconnected user_id=%s sid=%s reason=%s", conn.user_id, sid, reason)
