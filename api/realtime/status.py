"""GET /realtime/status: is the caller connected, when did they last beat, how many
connections the gateways hold, and whether any gateway is up; in the seed's shape."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import redis

from api.auth import authenticated, current_principal
from api.envelope import envelope, ok
from api.realtime.blueprint import blp
from api.realtime.schemas import StatusSchema
from core.timefmt import iso
from runtime import current_runtime

SECURITY = [{"bearerAuth": []}]
FEATURES = {
    "typing_indicators": True,
    "read_receipts": False,  # Pulse does not track reads: the chat service owns messages
    "presence_status": True,
    "push_notifications": True,
}


@blp.route("/status", methods=["GET"])
@authenticated()
@blp.response(200, envelope(StatusSchema))
@blp.doc(security=SECURITY)
def realtime_status() -> dict[str, Any]:
    """The caller's socket state and the gateways' health (across every gateway process)."""
    ctx = current_runtime()
    user_id = current_principal().user_id
    now = time.time()
    try:
        connected = bool(ctx.connections.live_sids(user_id))
        last_heartbeat = ctx.connections.last_heartbeat(user_id)
        active = ctx.connections.count_live(now)
        gateways = ctx.connections.count_gateways(now)
    except redis.RedisError:
        return ok(_answer(False, None, 0, "unavailable"))
    moment = datetime.fromtimestamp(last_heartbeat, UTC) if last_heartbeat else None
    return ok(_answer(connected, iso(moment), active, "healthy" if gateways else "degraded"))


def _answer(connected: bool, last: str | None, active: int, status: str) -> dict[str, Any]:
    return {
        "websocket_connected": connected,
        "last_heartbeat": last,
        "active_connections": active,
        "server_status": status,
        "features": FEATURES,
    }
