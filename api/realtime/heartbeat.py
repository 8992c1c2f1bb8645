"""POST /realtime/heartbeat: keeps a connection, or a device whose socket sleeps in the
background, present; at most one per HEARTBEAT_INTERVAL per connection or device."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from api.auth import authenticated, current_principal
from api.envelope import envelope, ok
from api.errors import ApiError, NotFound
from api.realtime import blp
from api.realtime.schemas import HeartbeatResultSchema, HeartbeatSchema
from realtime.presence import iso, presence_payload, publish_presence
from runtime import current_runtime

SECURITY = [{"bearerAuth": []}]
DEFAULT_DEVICE = "app"


class HeartbeatTooSoon(ApiError):
    status = 429
    code = "rate_limited"
    message = "One heartbeat per interval per connection or device."


@blp.route("/heartbeat", methods=["POST"])
@authenticated()
@blp.arguments(HeartbeatSchema)
@blp.response(200, envelope(HeartbeatResultSchema))
@blp.doc(security=SECURITY)
def heartbeat(args: dict[str, Any]) -> dict[str, Any]:
    """Refresh the caller's connection (connection_id) or device (device_id); answers with
    the caller's presence. 429 with Retry-After when it comes too soon."""
    ctx = current_runtime()
    user_id = current_principal().user_id
    window = max(1, ctx.settings.heartbeat_interval_ms // 1000)
    connection_id = args.get("connection_id")
    device_id = args.get("device_id")
    subject = f"conn:{connection_id}" if connection_id else f"device:{device_id or DEFAULT_DEVICE}"
    if connection_id and ctx.connections.owner(connection_id) != user_id:
        raise NotFound("No such live connection of yours.")
    wait = ctx.connections.heartbeat_allowed(user_id, subject, window)
    if wait:
        raise HeartbeatTooSoon(
            f"Too many heartbeats: one per {window} seconds per connection or device.",
            details={"retry_after": wait},
            headers={"Retry-After": str(wait)},
        )
    now = time.time()
    low_battery = args.get("low_battery")
    if connection_id:
        ctx.connections.touch(connection_id, user_id, now, heartbeat=True, low_battery=low_battery)
        if low_battery is False:
            ctx.presence.flush_now(connection_id, now)
    else:
        ctx.presence.note_device_seen(user_id, device_id or DEFAULT_DEVICE, now)
    ctx.connections.note_heartbeat(user_id, now)
    presence = publish_presence(ctx, user_id, now)
    return ok(
        {
            "acknowledged": True,
            "server_time": iso(datetime.fromtimestamp(now, UTC)),
            "next_heartbeat_in": window,
            "presence": presence_payload(user_id, presence),
        }
    )
