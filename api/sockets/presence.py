"""Presence events from the client: presence_update (a chosen status, low battery),
presence_subscribe / presence_unsubscribe (up to 500 users), activity and heartbeat.

Thin: each handler calls realtime.presence, which applies the visibility rules.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from api.sockets.guard import client_event, send_error
from api.sockets.local import LocalConnection
from api.sockets.schemas import (
    HeartbeatEventSchema,
    PresenceSubscribeSchema,
    PresenceUpdateSchema,
)
from core.catalog import ClientEvent, PresenceState, ServerEvent, SocketErrorCode
from core.requests import ActivityReport
from core.timefmt import iso_from_timestamp
from intake.activity import SocketActivitySchema
from models.activity import record_activity
from models.db import db
from realtime.presence import (
    TooManyStrangers,
    announce_activity,
    choose_status,
    presence_payload,
    publish_presence,
    subscribe,
)
from runtime import Runtime


def _set_low_battery(
    ctx: Runtime, conn: LocalConnection, sid: str, low_battery: bool, now: float
) -> None:
    conn.low_battery = low_battery
    ctx.connections.touch(sid, conn.user_id, now, low_battery=low_battery)
    if not low_battery:
        ctx.presence.flush_now(sid, now)


@client_event(ClientEvent.PRESENCE_UPDATE, PresenceUpdateSchema)
def presence_update(
    ctx: Runtime, conn: LocalConnection, sid: str, data: dict[str, Any]
) -> dict[str, Any]:
    now = time.time()
    if "low_battery" in data:
        _set_low_battery(ctx, conn, sid, data["low_battery"], now)
    if "status" in data:
        presence = choose_status(ctx, conn.user_id, PresenceState(data["status"]), now)
    else:
        presence = publish_presence(ctx, conn.user_id, now)
    return {"ok": True, "presence": presence_payload(conn.user_id, presence)}


@client_event(ClientEvent.PRESENCE_SUBSCRIBE, PresenceSubscribeSchema)
def presence_subscribe(
    ctx: Runtime, conn: LocalConnection, sid: str, data: dict[str, Any]
) -> dict[str, Any]:
    try:
        views = subscribe(ctx, sid, conn.user_id, data["user_ids"], time.time())
    except TooManyStrangers as exc:
        return send_error(
            sid,
            SocketErrorCode.RATE_LIMITED,
            f"At most {exc.limit} users outside your matches an hour.",
            ClientEvent.PRESENCE_SUBSCRIBE.value,
            {"retry_after_ms": exc.retry_after_seconds * 1000, "limit": exc.limit},
        )
    ctx.emit(ServerEvent.PRESENCE_BULK_UPDATE, {"users": views, "coalesced": False}, to=sid)
    return {"ok": True, "count": len(views)}


@client_event(ClientEvent.PRESENCE_UNSUBSCRIBE, PresenceSubscribeSchema)
def presence_unsubscribe(
    ctx: Runtime, conn: LocalConnection, sid: str, data: dict[str, Any]
) -> dict[str, Any]:
    ctx.presence.unwatch(sid, data["user_ids"])
    return {"ok": True}


@client_event(ClientEvent.ACTIVITY, SocketActivitySchema)
def activity(ctx: Runtime, conn: LocalConnection, sid: str, data: dict[str, Any]) -> dict[str, Any]:
    """One item, which happened now, written as POST /api/v1/activity writes a batch."""
    now = time.time()
    report = ActivityReport(
        user_id=conn.user_id,
        activity_type=data["activity_type"],
        occurred_at=datetime.fromtimestamp(now, UTC),
        metadata=data.get("metadata") or {},
    )
    with db.session_scope() as session:
        record_activity(session, [report], device_id=conn.record.device_id)
    announce_activity(ctx, conn.user_id, data["activity_type"], now)
    return {"ok": True}


@client_event(ClientEvent.HEARTBEAT, HeartbeatEventSchema)
def heartbeat(
    ctx: Runtime, conn: LocalConnection, sid: str, data: dict[str, Any]
) -> dict[str, Any]:
    now = time.time()
    ctx.connections.touch(sid, conn.user_id, now, heartbeat=True)
    if "low_battery" in data and data["low_battery"] != conn.low_battery:
        _set_low_battery(ctx, conn, sid, data["low_battery"], now)
    return {"ok": True, "server_time": iso_from_timestamp(now)}
