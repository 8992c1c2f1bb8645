"""Every Redis key Pulse writes (RQ keeps its own), built in one place with the prefix."""

from __future__ import annotations


def provider_bucket(prefix: str, provider: str) -> str:
    """The token bucket all workers share for one provider's send rate."""
    return f"{prefix}bucket:{provider}"


def provider_alarms(prefix: str) -> str:
    """Hash provider -> last credentials/configuration error, for operators."""
    return f"{prefix}alarms:providers"


def batch_window(prefix: str, batch_key: str) -> str:
    """When the open batch window of one batch key closes; expires with the window."""
    return f"{prefix}batch:{batch_key}"


def cap_day(prefix: str, user_id: str, day_key: str) -> str:
    """Pushes a user got on one local day (the daily frequency cap)."""
    return f"{prefix}cap:day:{user_id}:{day_key}"


def cap_type_hour(prefix: str, user_id: str, notification_type: str, hour_key: str) -> str:
    """Pushes of one type a user got in one hour (the per-type hourly cap)."""
    return f"{prefix}cap:hour:{user_id}:{notification_type}:{hour_key}"


def sink_pushes(prefix: str) -> str:
    """List of the last pushes the development sink accepted (newest first)."""
    return f"{prefix}sink:pushes"


# --- Real-time gateway ---------------------------------------------------------------
# A connection is a Socket.IO sid; a user's presence is aggregated over their connections
# and devices. Keys that hold one user's or one connection's state expire on their own.


def rt_connection(prefix: str, sid: str) -> str:
    """Hash: one live connection's record (user, device, platform, ...); TTL refreshed."""
    return f"{prefix}rt:conn:{sid}"


def rt_connections_by_expiry(prefix: str) -> str:
    """Sorted set sid -> when its record expires: the live count and the stale sweep."""
    return f"{prefix}rt:conns"


def rt_user_connections(prefix: str, user_id: str) -> str:
    """Set of a user's connection sids (possibly stale until the sweep prunes them)."""
    return f"{prefix}rt:user:{user_id}:conns"


def rt_user_devices(prefix: str, user_id: str) -> str:
    """Hash device -> last seen (epoch seconds) for devices without a live socket."""
    return f"{prefix}rt:user:{user_id}:devices"


def rt_user_status(prefix: str, user_id: str) -> str:
    """The status the user set (busy, away), if any."""
    return f"{prefix}rt:user:{user_id}:status"


def rt_user_last_heartbeat(prefix: str, user_id: str) -> str:
    return f"{prefix}rt:user:{user_id}:heartbeat"


def rt_presence_published(prefix: str, user_id: str) -> str:
    """The presence last announced to watchers (for change detection)."""
    return f"{prefix}rt:user:{user_id}:presence"


def rt_presence_version(prefix: str, user_id: str) -> str:
    """Counter bumped by every change of a user's presence facts."""
    return f"{prefix}rt:user:{user_id}:pver"


def schedule(prefix: str) -> str:
    """Hash periodic job id -> interval seconds: what scheduler.py last registered."""
    return f"{prefix}schedule"


def rt_stranger_subscriptions(prefix: str, viewer_id: str, hour: int) -> str:
    """Counter: users outside the viewer's matches it subscribed to in one clock hour."""
    return f"{prefix}rt:user:{viewer_id}:strangers:{hour}"


def rt_presence_watchers(prefix: str, user_id: str) -> str:
    """Hash watcher sid -> watcher user id: who subscribed to this user's presence."""
    return f"{prefix}rt:user:{user_id}:watchers"


def rt_watching(prefix: str, sid: str) -> str:
    """Set of the user ids one connection watches (to unsubscribe on disconnect)."""
    return f"{prefix}rt:conn:{sid}:watching"


def rt_presence_timers(prefix: str) -> str:
    """Sorted set user id -> when their presence changes by itself (away, offline)."""
    return f"{prefix}rt:presence:timers"


def rt_low_battery(prefix: str) -> str:
    """Set of the sids that reported low battery (their presence updates are coalesced)."""
    return f"{prefix}rt:lowbattery"


def rt_coalesced(prefix: str, sid: str) -> str:
    """Set of the user ids whose presence changed for a low-battery connection."""
    return f"{prefix}rt:conn:{sid}:coalesced"


def rt_coalesce_due(prefix: str) -> str:
    """Sorted set sid -> when its coalesced presence_bulk_update is due."""
    return f"{prefix}rt:coalesce:due"


def rt_typing(prefix: str, sid: str) -> str:
    """Hash conversation id -> recipient user id: what one connection is typing in."""
    return f"{prefix}rt:conn:{sid}:typing"


def rt_typing_deadlines(prefix: str) -> str:
    """Sorted set "sid|conversation" -> when typing stops without progress."""
    return f"{prefix}rt:typing:deadlines"


def rt_conversation(prefix: str, conversation_id: str) -> str:
    """Cached participants of a conversation (from the matches table)."""
    return f"{prefix}rt:conversation:{conversation_id}"


def rt_gateways(prefix: str) -> str:
    """Sorted set gateway node id -> until when it is known to be alive."""
    return f"{prefix}rt:gateways"


def rt_user_visibility(prefix: str, user_id: str) -> str:
    """Cached presence visibility of a user (the users table is the truth)."""
    return f"{prefix}rt:user:{user_id}:visibility"


def rt_user_partners(prefix: str, user_id: str) -> str:
    """Cached ids of a user's live matches (the matches table is the truth)."""
    return f"{prefix}rt:user:{user_id}:partners"
