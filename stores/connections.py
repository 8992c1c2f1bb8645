"""Socket connection records in Redis: who is connected, from which device, until when.

Every gateway process reads and writes the same records (a TTL refreshed by heartbeats
makes a dead gateway's connections vanish); nothing here lives in one process's memory.
Times are epoch seconds. No Socket.IO and no rule here: records only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from core import keys

# Atomically take the members of a sorted set whose score is due: each member is handed to
# exactly one caller, whichever gateway or worker asks first.
CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do redis.call('ZREM', KEYS[1], member) end
return due
"""


# Small batches: a gateway refreshing thousands of records never holds its loop for long.
REFRESH_BATCH = 100


@dataclass(frozen=True)
class ConnectionRecord:
    sid: str
    user_id: str
    device_id: str | None
    platform: str | None
    app_version: str | None
    low_battery: bool
    connected_at: float
    last_seen: float
    last_activity: float
    node: str

    @property
    def device_key(self) -> str:
        """The device this connection speaks for (the connection itself when unnamed)."""
        return self.device_id or f"conn-{self.sid}"

    def as_hash(self) -> dict[str, str]:
        return {
            "user_id": self.user_id,
            "device_id": self.device_id or "",
            "platform": self.platform or "",
            "app_version": self.app_version or "",
            "low_battery": "1" if self.low_battery else "0",
            "connected_at": repr(self.connected_at),
            "last_seen": repr(self.last_seen),
            "last_activity": repr(self.last_activity),
            "node": self.node,
        }

    @classmethod
    def from_hash(cls, sid: str, raw: dict[bytes, bytes]) -> ConnectionRecord:
        text = {k.decode(): v.decode() for k, v in raw.items()}
        return cls(
            sid=sid,
            user_id=text["user_id"],
            device_id=text.get("device_id") or None,
            platform=text.get("platform") or None,
            app_version=text.get("app_version") or None,
            low_battery=text.get("low_battery") == "1",
            connected_at=float(text.get("connected_at") or 0),
            last_seen=float(text.get("last_seen") or 0),
            last_activity=float(text.get("last_activity") or 0),
            node=text.get("node", ""),
        )


def member(user_id: str, sid: str) -> str:
    """The live-connections sorted set holds "user|sid" (a sid never contains '|')."""
    return f"{user_id}|{sid}"


def split_member(raw: bytes | str) -> tuple[str, str]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    user_id, _, sid = text.rpartition("|")
    return user_id, sid


class ConnectionStore:
    def __init__(self, client: redis.Redis, prefix: str, ttl_seconds: int):
        self.redis = client
        self.prefix = prefix
        self.ttl = ttl_seconds
        self._claim = client.register_script(CLAIM_DUE)

    def add(self, record: ConnectionRecord) -> None:
        p = self.prefix
        pipe = self.redis.pipeline(transaction=True)
        key = keys.rt_connection(p, record.sid)
        pipe.hset(key, mapping=record.as_hash())
        pipe.expire(key, self.ttl)
        pipe.sadd(keys.rt_user_connections(p, record.user_id), record.sid)
        pipe.zadd(
            keys.rt_connections_by_expiry(p),
            {member(record.user_id, record.sid): record.last_seen + self.ttl},
        )
        if record.low_battery:
            pipe.sadd(keys.rt_low_battery(p), record.sid)
        pipe.set(keys.rt_user_last_heartbeat(p, record.user_id), repr(record.last_seen), ex=86400)
        pipe.incr(keys.rt_presence_version(p, record.user_id))
        pipe.execute()

    def get(self, sid: str) -> ConnectionRecord | None:
        raw = self.redis.hgetall(keys.rt_connection(self.prefix, sid))
        return ConnectionRecord.from_hash(sid, raw) if raw else None

    def owner(self, sid: str) -> str | None:
        raw = self.redis.hget(keys.rt_connection(self.prefix, sid), "user_id")
        return raw.decode() if raw else None

    def touch(
        self,
        sid: str,
        user_id: str,
        now: float,
        *,
        activity: bool = False,
        heartbeat: bool = False,
        low_battery: bool | None = None,
    ) -> bool:
        """Refresh a live connection (TTL, last_seen; last_activity when the user did
        something). Returns False when the record is gone."""
        p = self.prefix
        key = keys.rt_connection(p, sid)
        fields = {"last_seen": repr(now)}
        if activity:
            fields["last_activity"] = repr(now)
        if low_battery is not None:
            fields["low_battery"] = "1" if low_battery else "0"
        pipe = self.redis.pipeline(transaction=True)
        pipe.exists(key)
        pipe.hset(key, mapping=fields)
        pipe.expire(key, self.ttl)
        pipe.zadd(keys.rt_connections_by_expiry(p), {member(user_id, sid): now + self.ttl})
        if heartbeat:
            pipe.set(keys.rt_user_last_heartbeat(p, user_id), repr(now), ex=86400)
        if activity:
            pipe.incr(keys.rt_presence_version(p, user_id))
        if low_battery is True:
            pipe.sadd(keys.rt_low_battery(p), sid)
        elif low_battery is False:
            pipe.srem(keys.rt_low_battery(p), sid)
        existed = pipe.execute()[0]
        if not existed:
            # The record had expired: hset recreated a partial one; take it back.
            self.redis.delete(key)
        return bool(existed)

    def refresh(self, members: Sequence[tuple[str, str]], now: float) -> list[str]:
        """Keep the records of connections this gateway still holds alive (engine.io's
        ping/pong proves them): called periodically by each gateway for its own sids.
        Returns the sids whose record was gone (swept while this process stalled)."""
        by_expiry = keys.rt_connections_by_expiry(self.prefix)
        missing: list[str] = []
        for start in range(0, len(members), REFRESH_BATCH):
            batch = members[start : start + REFRESH_BATCH]
            pipe = self.redis.pipeline(transaction=False)
            for user_id, sid in batch:
                pipe.expire(keys.rt_connection(self.prefix, sid), self.ttl)
                pipe.zadd(by_expiry, {member(user_id, sid): now + self.ttl}, xx=True)
            results = pipe.execute()
            missing.extend(
                sid for (_, sid), alive in zip(batch, results[::2], strict=True) if not alive
            )
        return missing

    def remove(self, record_user_id: str, sid: str) -> None:
        """Forget one connection (its device's last_seen is kept by the presence store)."""
        p = self.prefix
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(keys.rt_connection(p, sid))
        pipe.srem(keys.rt_user_connections(p, record_user_id), sid)
        pipe.zrem(keys.rt_connections_by_expiry(p), member(record_user_id, sid))
        pipe.srem(keys.rt_low_battery(p), sid)
        pipe.incr(keys.rt_presence_version(p, record_user_id))
        pipe.execute()

    def live_sids(self, user_id: str) -> list[str]:
        """The user's connections whose record is still alive."""
        members = self.redis.smembers(keys.rt_user_connections(self.prefix, user_id))
        sids = [s.decode() for s in members]
        if not sids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for sid in sids:
            pipe.exists(keys.rt_connection(self.prefix, sid))
        return [sid for sid, alive in zip(sids, pipe.execute(), strict=True) if alive]

    def live_users(self, user_ids: Sequence[str]) -> set[str]:
        """The users, among these, with a connection whose record is still alive (what
        `live_sids` says one by one): two pipelined round trips, however many users."""
        users = list(dict.fromkeys(user_ids))
        if not users:
            return set()
        pipe = self.redis.pipeline(transaction=False)
        for user_id in users:
            pipe.smembers(keys.rt_user_connections(self.prefix, user_id))
        connections = [
            (user_id, sid.decode())
            for user_id, sids in zip(users, pipe.execute(), strict=True)
            for sid in sids
        ]
        if not connections:
            return set()
        for _, sid in connections:
            pipe.exists(keys.rt_connection(self.prefix, sid))
        return {
            user_id
            for (user_id, _), alive in zip(connections, pipe.execute(), strict=True)
            if alive
        }

    def count_live(self, now: float) -> int:
        return int(self.redis.zcount(keys.rt_connections_by_expiry(self.prefix), f"({now}", "+inf"))

    def claim_expired(self, now: float, limit: int = 500) -> list[tuple[str, str]]:
        """Connections whose record outlived no heartbeat: each returned once, to one caller."""
        raw = self._claim(keys=[keys.rt_connections_by_expiry(self.prefix)], args=[now, limit])
        return [split_member(item) for item in raw]

    def reinstate(self, user_id: str, sid: str) -> bool:
        """Put back a claimed connection whose record is in fact alive (refreshed meanwhile);
        False when it is gone."""
        remaining = self.redis.ttl(keys.rt_connection(self.prefix, sid))
        if remaining is None or remaining < 0:
            return False
        expires = float(self.redis.time()[0]) + remaining
        self.redis.zadd(keys.rt_connections_by_expiry(self.prefix), {member(user_id, sid): expires})
        return True

    def is_alive(self, sid: str) -> bool:
        return bool(self.redis.exists(keys.rt_connection(self.prefix, sid)))

    def last_heartbeat(self, user_id: str) -> float | None:
        raw = self.redis.get(keys.rt_user_last_heartbeat(self.prefix, user_id))
        return float(raw) if raw else None

    def note_heartbeat(self, user_id: str, now: float) -> None:
        self.redis.set(keys.rt_user_last_heartbeat(self.prefix, user_id), repr(now), ex=86400)

    def mark_gateway_alive(self, node: str, until: float) -> None:
        self.redis.zadd(keys.rt_gateways(self.prefix), {node: until})

    def mark_gateway_gone(self, node: str) -> None:
        self.redis.zrem(keys.rt_gateways(self.prefix), node)

    def count_gateways(self, now: float) -> int:
        return int(self.redis.zcount(keys.rt_gateways(self.prefix), f"({now}", "+inf"))
