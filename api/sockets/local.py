"""This gateway process's own view of the connections it holds: the rate-limit bucket and
typing throttle of each, and the record it keeps alive in Redis.

Only per-connection, per-process bookkeeping lives here; every fact other processes need
(records, presence, watchers, typing) is in Redis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.socket_limits import Bucket
from stores.connections import ConnectionRecord


@dataclass
class LocalConnection:
    record: ConnectionRecord
    bucket: Bucket
    last_progress: float | None = None  # monotonic: the last typing_progress forwarded
    last_activity_write: float = 0.0  # monotonic: the last activity written to Redis
    limited_notice: float = 0.0  # monotonic: the last rate_limited error sent
    low_battery: bool = False
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def user_id(self) -> str:
        return self.record.user_id


# sid -> the connection, for the connections this process holds.
CONNECTIONS: dict[str, LocalConnection] = {}
