"""The gateways' Socket.IO message queue on Redis: python-socketio's RedisManager, living
through a Redis outage the way the rest of Pulse does (stores.client.RedisOutage).

python-socketio's own manager keeps the gateway running when Redis goes away, but its
listening thread logs an error at every attempt to listen again (twice: its logger has a
handler of its own besides ours) and waits 1, 2, 4 ... up to 60 s between attempts, without
jitter: a gateway can stay deaf for up to a minute after Redis is back, and what workers and
other gateways emit to its connections meanwhile is lost. Each emit it cannot publish logs
two errors more. This one logs one line when Redis goes and one when it is back, retries
with the capped, jittered backoff (at most RECONNECT_CAP_SECONDS deaf after Redis is back),
and drops what it cannot publish without a line each (real-time messages are not kept in
any case: the push is the durable path).

A gateway uses it through `client_manager=PulseRedisManager(url, channel=...)`, in place of
Flask-SocketIO's `message_queue=` and `channel=` (api/sockets/__init__.py).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import socketio

from stores.client import UNAVAILABLE, RedisOutage

log = logging.getLogger(__name__)


class PulseRedisManager(socketio.RedisManager):  # type: ignore[misc]
    def __init__(
        self,
        url: str,
        channel: str,
        write_only: bool = False,
        redis_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(url, channel=channel, write_only=write_only, redis_options=redis_options)
        # One view of Redis for listening and publishing: one line each way per outage.
        self.outage = RedisOutage("gateway-message-queue", log)

    def _redis_listen_with_retries(self) -> Iterator[dict[str, Any]]:
        while True:
            try:
                if self.pubsub is not None:
                    with contextlib.suppress(Exception):
                        self.pubsub.close()
                self._redis_connect()
                self.pubsub.subscribe(self.channel)
                self.outage.recovered()
                yield from self.pubsub.listen()
                pause = 0.0
            except UNAVAILABLE as exc:
                pause = self.outage.failed(exc)
            except Exception as exc:  # any other failure: listen again too, as upstream does
                log.exception("event=message_queue_listen_failed error_type=%s", type(exc).__name__)
                pause = self.outage.failed(exc)
            time.sleep(pause)

    def _publish(self, data: Any) -> Any:
        """Two attempts, the second on a new connection; what cannot be published is
        dropped (the outage is logged once, by `outage`)."""
        for attempt in (1, 2):
            try:
                if not self.connected:
                    self._redis_connect()
                result = self.redis.publish(self.channel, self.json.dumps(data))
            except UNAVAILABLE as exc:
                self.connected = False
                if attempt == 2:
                    self.outage.failed(exc)
                continue
            self.outage.recovered()
            return result
        return None
