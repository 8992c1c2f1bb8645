"""POST /realtime/heartbeat: keeps a connection, or a device whose socket sleeps in the
background, present; at most one per HEARTBEAT_INTERVAL per connection or device."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from flask import request

from api.auth import authenticated, current_principal
from api.envelope import envelope, ok
from api.errors import NotFound
from api.extensions import limiter, rate_limit_key, request_session
from api.realtime.blueprint import blp
from api.realtime.schemas import HeartbeatResultSchema, HeartbeatSchema
from core.timefmt import iso_from_timestamp
from models.users import record_device_report
from realtime.presence import presence_payload, publish_presence
from runtime import current_runtime

SECURITY = [{"bearerAuth": []}]
DEFAULT_DEVICE = "app"


def _window_seconds() -> int:
    return max(1, current_runtime().settings.realtime.heartbeat_interval_ms // 1000)


def _heartbeat_limit() -> str:
    return f"1 per {_window_seconds()} second"


def _heartbeat_key() -> str:
    """One heartbeat per interval per user and connection (or device), whatever the body
    holds otherwise; a body that is not an object counts as the default device."""
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    connection_id, device_id = body.get("connection_id"), body.get("device_id")
    if isinstance(connection_id, str) and connection_id:
        subject = f"conn:{connection_id[:64]}"
    else:
        device = device_id if isinstance(device_id, str) and device_id else DEFAULT_DEVICE
        subject = f"device:{device[:128]}"
    return f"{rate_limit_key()}:heartbeat:{subject}"


@blp.route("/heartbeat", methods=["POST"])
@limiter.limit(_heartbeat_limit, key_func=_heartbeat_key)
@authenticated()
@blp.arguments(HeartbeatSchema)
@blp.response(200, envelope(HeartbeatResultSchema))
@blp.doc(security=SECURITY)
def heartbeat(args: dict[str, Any]) -> dict[str, Any]:
    """Refresh the caller's connection (connection_id) or device (device_id); answers with
    the caller's presence. 429 with Retry-After when it comes too soon (Flask-Limiter,
    keyed by user and connection or device). The device's time zone and locale, when given,
    are recorded (the most recent device report wins)."""
    ctx = current_runtime()
    user_id = current_principal().user_id
    connection_id = args.get("connection_id")
    device_id = args.get("device_id")
    if connection_id and ctx.connections.owner(connection_id) != user_id:
        raise NotFound("No such live connection of yours.")
    now = time.time()
    low_battery = args.get("low_battery")
    if connection_id:
        ctx.connections.touch(connection_id, user_id, now, heartbeat=True, low_battery=low_battery)
        if low_battery is False:
            ctx.presence.flush_now(connection_id, now)
    else:
        ctx.presence.note_device_seen(user_id, device_id or DEFAULT_DEVICE, now)
    ctx.connections.note_heartbeat(user_id, now)
    if args.get("timezone") or args.get("locale"):
        # Written only when it changes what is stored (the app may send it every time).
        session = request_session()
        record_device_report(
            session,
            user_id,
            timezone=args.get("timezone"),
            locale=args.get("locale"),
            reported_at=datetime.fromtimestamp(now, UTC),
        )
        session.commit()
    presence = publish_presence(ctx, user_id, now)
    return ok(
        {
            "acknowledged": True,
            "server_time": iso_from_timestamp(now),
            "next_heartbeat_in": _window_seconds(),
            "presence": presence_payload(user_id, presence),
        }
    )
