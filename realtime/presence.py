"""Presence work: recompute a user's presence from the facts in Redis and announce it to
the watchers allowed to see it; subscriptions; low-battery coalescing; the timers and the
stale-connection sweep.

Used in-process by the gateway and the API, and as RQ jobs. Visibility is checked here on
every announcement: a watcher who may not see a user gets nothing but "offline".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from core.catalog import PresenceState, PresenceVisibility, ServerEvent, TypingStopReason
from core.presence import Presence, aggregate, may_see, view
from core.timefmt import iso
from models.db import db
from models.users import active_partners, presence_visibilities
from realtime.typing import stop_all_typing, stop_expired_typing
from runtime import Runtime
from stores.connections import ConnectionRecord

log = logging.getLogger(__name__)


def presence_payload(user_id: str, presence: Presence) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "status": presence.status.value,
        "last_seen": iso(presence.last_seen),
    }


def _at(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def compute(ctx: Runtime, user_id: str, now: float) -> tuple[int, Presence]:
    version, facts = ctx.presence.read_facts(user_id)
    settings = ctx.settings
    return version, aggregate(
        facts,
        _at(now),
        timedelta(seconds=settings.realtime.away_after_seconds),
        timedelta(seconds=settings.realtime.offline_after_seconds),
    )


def publish_presence(
    ctx: Runtime, user_id: str, now: float | None = None, *, force: bool = False
) -> Presence:
    """Recompute; when the status changed (or `force`: visibility or matches changed),
    announce it. Safe to call from any process at any time."""
    now = time.time() if now is None else now
    version, presence = compute(ctx, user_id, now)
    applied, previous = ctx.presence.record_published(user_id, version, presence)
    if applied and (force or previous != presence.status):
        announce(ctx, user_id, presence, now, to_hidden=force)
    return presence


def visibilities(ctx: Runtime, user_ids: Sequence[str]) -> dict[str, str]:
    """Each user's presence visibility: from the cache, else from the users table."""
    found = ctx.presence.cached_visibilities(user_ids)
    missing = [u for u in user_ids if u not in found]
    if missing:
        with db.session_scope() as session:
            loaded = presence_visibilities(session, missing)
        default = ctx.settings.realtime.presence_visibility_default
        fresh = {u: loaded.get(u) or default for u in missing}
        ctx.presence.cache_visibilities(fresh)
        found.update(fresh)
    return found


def partners(ctx: Runtime, user_id: str, now: float) -> set[str]:
    """The user's live matches: from the cache, else from the matches table."""
    cached = ctx.presence.cached_partners(user_id)
    if cached is not None:
        return cached
    with db.session_scope() as session:
        found = active_partners(session, user_id, _at(now))
    ctx.presence.cache_partners(user_id, found)
    return found


def _audience(ctx: Runtime, user_id: str, watcher_ids: set[str], now: float) -> dict[str, bool]:
    """watcher id -> whether they may see `user_id`."""
    others = watcher_ids - {user_id}
    if not others:
        return dict.fromkeys(watcher_ids, True)
    visibility = visibilities(ctx, [user_id])[user_id]
    matched = partners(ctx, user_id, now) if visibility == PresenceVisibility.MATCHES else set()
    return {w: may_see(w, user_id, visibility, w in matched) for w in watcher_ids}


def announce(
    ctx: Runtime, user_id: str, presence: Presence, now: float, *, to_hidden: bool = False
) -> None:
    """user_presence_update to each allowed watcher; low-battery ones get it coalesced.
    With `to_hidden`, watchers who may not see the user are told "offline" (used when
    visibility changed)."""
    watchers = ctx.presence.watchers(user_id)
    if not watchers.by_sid:
        return
    allowed = _audience(ctx, user_id, set(watchers.by_sid.values()), now)
    shown, hidden, coalesced = [], [], []
    for sid, watcher in watchers.by_sid.items():
        visible = allowed[watcher]
        if sid in watchers.low_battery:
            if visible or to_hidden:
                coalesced.append(sid)
        elif visible:
            shown.append(sid)
        elif to_hidden:
            hidden.append(sid)
    ctx.emit(ServerEvent.USER_PRESENCE_UPDATE, presence_payload(user_id, presence), to=shown)
    ctx.emit(
        ServerEvent.USER_PRESENCE_UPDATE,
        presence_payload(user_id, view(presence, visible=False)),
        to=hidden,
    )
    if coalesced:
        due = now + ctx.settings.realtime.presence_update_interval_ms / 1000
        ctx.presence.queue_coalesced(coalesced, user_id, due)


def announce_activity(ctx: Runtime, user_id: str, activity_type: str, now: float) -> None:
    """user_activity_update to the allowed watchers (not low-battery ones: they get the
    presence change, coalesced)."""
    watchers = ctx.presence.watchers(user_id)
    if not watchers.by_sid:
        return
    allowed = _audience(ctx, user_id, set(watchers.by_sid.values()), now)
    sids = [
        sid
        for sid, watcher in watchers.by_sid.items()
        if allowed[watcher] and sid not in watchers.low_battery
    ]
    payload = {"user_id": user_id, "activity_type": activity_type, "at": iso(_at(now))}
    ctx.emit(ServerEvent.USER_ACTIVITY_UPDATE, payload, to=sids)


def views_for(
    ctx: Runtime, viewer_id: str, user_ids: Sequence[str], now: float
) -> list[dict[str, Any]]:
    """The presence of each of `user_ids` as `viewer_id` may see it."""
    facts = ctx.presence.read_many(list(user_ids))
    visibility = visibilities(ctx, list(user_ids))
    needs_partners = any(v == PresenceVisibility.MATCHES for v in visibility.values())
    matched = partners(ctx, viewer_id, now) if needs_partners else set()
    settings = ctx.settings
    away, offline = (
        timedelta(seconds=settings.realtime.away_after_seconds),
        timedelta(seconds=settings.realtime.offline_after_seconds),
    )
    views = []
    for user_id in user_ids:
        presence = aggregate(facts[user_id][1], _at(now), away, offline)
        visible = may_see(viewer_id, user_id, visibility.get(user_id), user_id in matched)
        views.append(presence_payload(user_id, view(presence, visible)))
    return views


class TooManyStrangers(Exception):
    """presence_subscribe past PRESENCE_STRANGER_SUBSCRIPTIONS_PER_HOUR users outside the
    caller's matches: whoever knows user ids must not be able to watch them all."""

    def __init__(self, limit: int, retry_after_seconds: int):
        super().__init__(limit)
        self.limit = limit
        self.retry_after_seconds = retry_after_seconds


def subscribe(
    ctx: Runtime, sid: str, viewer_id: str, user_ids: Sequence[str], now: float
) -> list[dict[str, Any]]:
    """Watch `user_ids` from this connection and return what the viewer may see of each;
    raises TooManyStrangers (watching nothing) past the hourly limit outside its matches."""
    ids = list(dict.fromkeys(user_ids))
    matched = partners(ctx, viewer_id, now)
    strangers = sum(1 for u in ids if u != viewer_id and u not in matched)
    if strangers:
        limit = ctx.settings.realtime.stranger_subscriptions_per_hour
        if ctx.presence.count_stranger_subscriptions(viewer_id, strangers, now) > limit:
            ctx.presence.count_stranger_subscriptions(viewer_id, -strangers, now)
            raise TooManyStrangers(limit, 3600 - int(now) % 3600)
    ctx.presence.watch(sid, viewer_id, ids)
    return views_for(ctx, viewer_id, ids, now)


def flush_coalesced(ctx: Runtime, sid: str, now: float) -> None:
    """One presence_bulk_update with everything a low-battery connection has pending."""
    user_ids = ctx.presence.take_coalesced(sid)
    viewer = ctx.connections.owner(sid)
    if not user_ids or viewer is None:
        return
    views = views_for(ctx, viewer, sorted(user_ids), now)
    ctx.emit(ServerEvent.PRESENCE_BULK_UPDATE, {"users": views, "coalesced": True}, to=sid)


def connection_opened(ctx: Runtime, record: ConnectionRecord) -> Presence:
    ctx.connections.add(record)
    return publish_presence(ctx, record.user_id, record.connected_at)


def connection_closed(
    ctx: Runtime,
    user_id: str,
    sid: str,
    device_key: str,
    last_seen: float,
    reason: TypingStopReason = TypingStopReason.DISCONNECTED,
    now: float | None = None,
) -> None:
    """Everything one connection held goes: its record, watches, pending updates and
    typing (the other person is told it stopped); the device keeps its last_seen."""
    stop_all_typing(ctx, sid, user_id, reason)
    ctx.presence.forget_connection(sid)
    ctx.presence.note_device_seen(user_id, device_key, last_seen)
    ctx.connections.remove(user_id, sid)
    publish_presence(ctx, user_id, now)


def choose_status(ctx: Runtime, user_id: str, status: PresenceState, now: float) -> Presence:
    ctx.presence.choose_status(user_id, status)
    return publish_presence(ctx, user_id, now)


def sweep(ctx: Runtime, now: float | None = None) -> dict[str, int]:
    """Due presence timers, typing timeouts, coalesced updates and stale connections, each
    claimed atomically: any number of gateways and workers may run this at once."""
    now = time.time() if now is None else now
    counts = {"timers": 0, "typing": 0, "coalesced": 0, "stale": 0}
    for user_id in ctx.presence.claim_timers(now):
        publish_presence(ctx, user_id, now)
        counts["timers"] += 1
    counts["typing"] = stop_expired_typing(ctx, now)
    for sid in ctx.presence.claim_coalesced(now):
        flush_coalesced(ctx, sid, now)
        counts["coalesced"] += 1
    counts["stale"] = sweep_stale_connections(ctx, now)
    return counts


def sweep_stale_connections(ctx: Runtime, now: float) -> int:
    """Connections whose record expired (their gateway died, or stopped refreshing)."""
    removed = 0
    for user_id, sid in ctx.connections.claim_expired(now):
        if ctx.connections.reinstate(user_id, sid):
            continue
        last_seen = now - ctx.settings.realtime.connection_ttl_seconds
        connection_closed(ctx, user_id, sid, f"conn-{sid}", last_seen, now=now)
        removed += 1
    if removed:
        log.info("event=stale_connections_removed count=%d", removed)
    return removed
