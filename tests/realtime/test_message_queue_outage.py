"""The gateways' Socket.IO message queue (api/sockets/message_queue.py) through a Redis
outage: one line when Redis goes and one when it is back per manager, whatever the number
of attempts and emits meanwhile, and listening again within the backoff's cap once Redis
answers (python-socketio's own manager waits up to a minute, logging every attempt)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from api.sockets.message_queue import PulseRedisManager
from stores.client import RECONNECT_CAP_SECONDS
from tests.redis_servers import RedisServer, any_binary
from tests.waiting import wait_until

CHANNEL = "pulse-test-message-queue"
OUTAGE_SECONDS = 3.0


class _Stopped(BaseException):
    pass


class StoppableManager(PulseRedisManager):
    """Its listening thread ends at its next connection attempt once `stopping` is set."""

    stopping = False

    def _redis_connect(self) -> None:
        if self.stopping:
            raise _Stopped
        super()._redis_connect()


def lines(caplog: pytest.LogCaptureFixture, event: str) -> int:
    return sum(
        1
        for record in caplog.records
        if record.name == "api.sockets.message_queue" and event in record.getMessage()
    )


def test_the_message_queue_logs_an_outage_once_and_listens_again_within_the_cap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="api.sockets.message_queue")
    server = RedisServer(any_binary(), tmp_path)
    server.start()
    listener = StoppableManager(server.url(user=None), channel=CHANNEL)
    publisher = PulseRedisManager(server.url(user=None), channel=CHANNEL, write_only=True)
    received: queue.Queue[Any] = queue.Queue()

    def listen() -> None:
        try:
            for message in listener._listen():
                received.put(listener.json.loads(message))
        except _Stopped:
            return

    def subscribed() -> bool:
        try:
            return server.client.pubsub_numsub(CHANNEL) == [(CHANNEL.encode(), 1)]
        except Exception:
            return False

    threading.Thread(target=listen, daemon=True, name="message-queue-listener").start()
    try:
        wait_until(subscribed, 10)
        publisher._publish({"n": 1})
        assert received.get(timeout=5) == {"n": 1}

        server.kill()
        outage_ends = time.monotonic() + OUTAGE_SECONDS
        for n in range(5):  # emits during the outage: dropped, without a line each
            assert publisher._publish({"n": n}) is None
        while time.monotonic() < outage_ends:  # the listener tries again meanwhile
            time.sleep(0.1)
        assert lines(caplog, "event=redis_unavailable") == 2  # the listener, the publisher

        server.start()  # the same port, empty
        back = time.monotonic()
        wait_until(subscribed, RECONNECT_CAP_SECONDS + 2)
        assert time.monotonic() - back <= RECONNECT_CAP_SECONDS + 2
        publisher._publish({"n": 2})
        assert received.get(timeout=5) == {"n": 2}
        assert lines(caplog, "event=redis_back") == 2
        assert lines(caplog, "event=redis_unavailable") == 2
        assert not [r for r in caplog.records if r.exc_info]
    finally:
        listener.stopping = True
        server.close()
