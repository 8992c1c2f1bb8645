"""A token bucket in Redis, shared by every worker, for a provider's send rate (Expo allows
600 notifications a second per project). Taking tokens is one atomic script: no
read-then-write race between workers, and never a sleep: what is not granted is deferred.
"""

from __future__ import annotations

import redis

TAKE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local requested = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate / 1000)
local granted = math.min(requested, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 1000)
return granted
"""


class TokenBucket:
    def __init__(self, connection: redis.Redis, key: str, rate_per_second: int):
        self._script = connection.register_script(TAKE)
        self._key = key
        self.rate = rate_per_second

    def take(self, wanted: int) -> int:
        """Take up to `wanted` tokens now; returns how many were granted (maybe 0)."""
        if wanted <= 0:
            return 0
        return int(self._script(keys=[self._key], args=[self.rate, self.rate, wanted]))

    def seconds_until(self, missing: int) -> float:
        """Roughly when `missing` more tokens will have refilled."""
        return max(1.0, missing / self.rate)
