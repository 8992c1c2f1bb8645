"""Presence facts in Redis: each user's live connections' activity, devices' last sign of
life, chosen status, what was last announced, watchers, timers and coalesced updates.

Records and atomic scripts only; the rules are in core.presence. Times are epoch seconds.
Scripts touch keys they compute from the prefix: one Redis, not a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from core import keys
from core.catalog import PresenceState
from core.presence import Presence, PresenceFacts, latest
from stores.client import run_script_in_order
from stores.connections import CLAIM_DUE

DEVICES_TTL_SECONDS = 30 * 86400  # how long a last_seen is remembered
VISIBILITY_CACHE_SECONDS = 300
PARTNERS_CACHE_SECONDS = 30
PUBLISHED_TTL_SECONDS = 7 * 86400

# One round trip for everything presence is computed from.
READ_FACTS = """
local sids = redis.call('SMEMBERS', KEYS[1])
local activity = {}
for _, sid in ipairs(sids) do
  local value = redis.call('HGET', ARGV[1] .. sid, 'last_activity')
  if value then table.insert(activity, value) end
end
local seen = redis.call('HVALS', KEYS[2])
local chosen = redis.call('GET', KEYS[3]) or ''
local version = redis.call('GET', KEYS[4]) or '0'
return {version, chosen, activity, seen}
"""

# Record what is announced, unless a computation from newer facts already did: returns
# {applied, previous status}. Also (re)arms the user's timer.
RECORD_PUBLISHED = """
local current = redis.call('GET', KEYS[1])
local previous = ''
if current then
  local version, status = string.match(current, '^(%d+)|([^|]*)|')
  if version and tonumber(version) > tonumber(ARGV[1]) then return {0, status} end
  previous = status or ''
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2] .. '|' .. ARGV[3], 'EX', ARGV[6])
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[2], ARGV[5])
else
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
end
return {1, previous}
"""

TAKE_SET = """
local members = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
return members
"""


def to_datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class Watchers:
    """Who watches one user: sid -> watcher user id, and which of them are on low battery."""

    by_sid: dict[str, str]
    low_battery: frozenset[str]


class PresenceStore:
    def __init__(self, client: redis.Redis, prefix: str):
        self.redis = client
        self.prefix = prefix
        self._read = client.register_script(READ_FACTS)
        self._record = client.register_script(RECORD_PUBLISHED)
        self._claim = client.register_script(CLAIM_DUE)
        self._take = client.register_script(TAKE_SET)

    # --- facts ----------------------------------------------------------------------

    def _fact_keys(self, user_id: str) -> list[str]:
        p = self.prefix
        return [
            keys.rt_user_connections(p, user_id),
            keys.rt_user_devices(p, user_id),
            keys.rt_user_status(p, user_id),
            keys.rt_presence_version(p, user_id),
        ]

    def read_facts(self, user_id: str) -> tuple[int, PresenceFacts]:
        return self._parse(self._read(keys=self._fact_keys(user_id), args=[self._conn_prefix]))

    def read_many(self, user_ids: Sequence[str]) -> dict[str, tuple[int, PresenceFacts]]:
        calls = [(self._fact_keys(user_id), [self._conn_prefix]) for user_id in user_ids]
        raws = run_script_in_order(self.redis, self._read, calls)
        return {user_id: self._parse(raw) for user_id, raw in zip(user_ids, raws, strict=True)}

    @property
    def _conn_prefix(self) -> str:
        return keys.rt_connection(self.prefix, "")

    @staticmethod
    def _parse(raw: list) -> tuple[int, PresenceFacts]:
        version, chosen, activity, seen = raw
        chosen_state = PresenceState(chosen.decode()) if chosen else None
        return int(version), PresenceFacts(
            live_activity=tuple(to_datetime(float(a)) for a in activity),  # type: ignore[misc]
            last_seen=latest(to_datetime(float(s)) for s in seen),
            chosen=chosen_state,
        )

    def note_device_seen(self, user_id: str, device_key: str, now: float) -> None:
        """A device without a live socket showed a sign of life (closed, or HTTP heartbeat)."""
        p = self.prefix
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.rt_user_devices(p, user_id), device_key, repr(now))
        pipe.expire(keys.rt_user_devices(p, user_id), DEVICES_TTL_SECONDS)
        pipe.incr(keys.rt_presence_version(p, user_id))
        pipe.execute()

    def choose_status(self, user_id: str, status: PresenceState) -> None:
        """busy or away as chosen by the user; online clears the choice."""
        p = self.prefix
        pipe = self.redis.pipeline(transaction=True)
        if status in (PresenceState.BUSY, PresenceState.AWAY):
            pipe.set(keys.rt_user_status(p, user_id), status.value, ex=DEVICES_TTL_SECONDS)
        else:
            pipe.delete(keys.rt_user_status(p, user_id))
        pipe.incr(keys.rt_presence_version(p, user_id))
        pipe.execute()

    def record_published(
        self, user_id: str, version: int, presence: Presence
    ) -> tuple[bool, PresenceState | None]:
        """Store what is announced (unless newer facts were already announced) and arm the
        timer for the next change by itself. Returns (applied, previous status)."""
        p = self.prefix
        applied, previous = self._record(
            keys=[keys.rt_presence_published(p, user_id), keys.rt_presence_timers(p)],
            args=[
                version,
                presence.status.value,
                presence.last_seen.timestamp() if presence.last_seen else "",
                presence.changes_at.timestamp() if presence.changes_at else "",
                user_id,
                PUBLISHED_TTL_SECONDS,
            ],
        )
        text = previous.decode() if isinstance(previous, bytes) else previous
        return bool(applied), PresenceState(text) if text else None

    def claim_timers(self, now: float, limit: int = 500) -> list[str]:
        raw = self._claim(keys=[keys.rt_presence_timers(self.prefix)], args=[now, limit])
        return [item.decode() for item in raw]

    # --- caches of the tables that decide visibility ---------------------------------

    def cached_visibilities(self, user_ids: Sequence[str]) -> dict[str, str]:
        if not user_ids:
            return {}
        raw = self.redis.mget([keys.rt_user_visibility(self.prefix, u) for u in user_ids])
        return {u: v.decode() for u, v in zip(user_ids, raw, strict=True) if v is not None}

    def cache_visibilities(self, visibilities: dict[str, str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for user_id, visibility in visibilities.items():
            key = keys.rt_user_visibility(self.prefix, user_id)
            pipe.set(key, visibility, ex=VISIBILITY_CACHE_SECONDS)
        pipe.execute()

    def cached_partners(self, user_id: str) -> set[str] | None:
        raw = self.redis.get(keys.rt_user_partners(self.prefix, user_id))
        return None if raw is None else set(json.loads(raw))

    def cache_partners(self, user_id: str, partners: set[str]) -> None:
        key = keys.rt_user_partners(self.prefix, user_id)
        self.redis.set(key, json.dumps(sorted(partners)), ex=PARTNERS_CACHE_SECONDS)

    def forget_partners(self, user_ids: Iterable[str]) -> None:
        ids = [keys.rt_user_partners(self.prefix, u) for u in user_ids]
        if ids:
            self.redis.delete(*ids)

    # --- watchers -------------------------------------------------------------------

    def count_stranger_subscriptions(self, viewer_id: str, count: int, now: float) -> int:
        """Add `count` to the viewer's subscriptions outside its matches this clock hour;
        returns the new total (the caller takes them back with a negative count)."""
        key = keys.rt_stranger_subscriptions(self.prefix, viewer_id, int(now // 3600))
        pipe = self.redis.pipeline(transaction=False)
        pipe.incrby(key, count)
        pipe.expire(key, 3600, nx=True)
        total, _ = pipe.execute()
        return int(total)

    def watch(self, sid: str, watcher_id: str, user_ids: Sequence[str]) -> None:
        p = self.prefix
        pipe = self.redis.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.hset(keys.rt_presence_watchers(p, user_id), sid, watcher_id)
        if user_ids:
            pipe.sadd(keys.rt_watching(p, sid), *user_ids)
        pipe.execute()

    def unwatch(self, sid: str, user_ids: Iterable[str]) -> None:
        p = self.prefix
        ids = list(user_ids)
        pipe = self.redis.pipeline(transaction=False)
        for user_id in ids:
            pipe.hdel(keys.rt_presence_watchers(p, user_id), sid)
        if ids:
            pipe.srem(keys.rt_watching(p, sid), *ids)
        pipe.execute()

    def watched_by(self, sid: str) -> list[str]:
        return [u.decode() for u in self.redis.smembers(keys.rt_watching(self.prefix, sid))]

    def watchers(self, user_id: str) -> Watchers:
        by_sid = {
            sid.decode(): watcher.decode()
            for sid, watcher in self.redis.hgetall(
                keys.rt_presence_watchers(self.prefix, user_id)
            ).items()
        }
        if not by_sid:
            return Watchers({}, frozenset())
        sids = list(by_sid)
        flags = self.redis.smismember(keys.rt_low_battery(self.prefix), sids)
        return Watchers(by_sid, frozenset(s for s, f in zip(sids, flags, strict=True) if f))

    def forget_connection(self, sid: str) -> None:
        """Drop everything one connection watched and had pending."""
        p = self.prefix
        self.unwatch(sid, self.watched_by(sid))
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(keys.rt_watching(p, sid), keys.rt_coalesced(p, sid))
        pipe.zrem(keys.rt_coalesce_due(p), sid)
        pipe.execute()

    # --- coalesced updates for low-battery connections -------------------------------

    def queue_coalesced(self, sids: Iterable[str], user_id: str, due: float) -> None:
        p = self.prefix
        pipe = self.redis.pipeline(transaction=False)
        for sid in sids:
            pipe.sadd(keys.rt_coalesced(p, sid), user_id)
            pipe.expire(keys.rt_coalesced(p, sid), 86400)
            pipe.zadd(keys.rt_coalesce_due(p), {sid: due}, nx=True)
        pipe.execute()

    def flush_now(self, sid: str, now: float) -> None:
        """A connection left low battery: whatever it has pending goes out at once."""
        p = self.prefix
        if self.redis.exists(keys.rt_coalesced(p, sid)):
            self.redis.zadd(keys.rt_coalesce_due(p), {sid: now})

    def claim_coalesced(self, now: float, limit: int = 500) -> list[str]:
        raw = self._claim(keys=[keys.rt_coalesce_due(self.prefix)], args=[now, limit])
        return [item.decode() for item in raw]

    def take_coalesced(self, sid: str) -> list[str]:
        return [u.decode() for u in self._take(keys=[keys.rt_coalesced(self.prefix, sid)])]
