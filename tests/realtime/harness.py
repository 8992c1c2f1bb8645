"""Real processes for real-time tests: gateway processes (gateway.py) and RQ workers on a
free port each, and a python-socketio client that records what it receives.

Nothing is mocked: clients speak Socket.IO over real sockets to real gateways that share
the test run's PostgreSQL and Redis.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests
import socketio

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A child process with its output in a log file (shown when a test fails)."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


class Gateway(Process):
    def __init__(self, name: str, env: Mapping[str, str], log_dir: Path, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "gateway.py", "--port", str(self.port), *extra]
        super().__init__(name, args, env, log_dir)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"gateway {self.name} exited:\n{self.output()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gateway {self.name} did not answer in time:\n{self.output()}")


def start_worker(name: str, env: Mapping[str, str], log_dir: Path) -> Process:
    worker = Process(name, [sys.executable, "-m", "workers.run"], env, log_dir)
    time.sleep(0.5)
    if not worker.alive():
        raise RuntimeError(f"worker exited:\n{worker.output()}")
    return worker


class Client:
    """A python-socketio client that records every event it receives, in order."""

    def __init__(self, url: str, token: str | None, **auth: Any):
        self.url = url
        self.events: list[tuple[str, Any]] = []
        self.connect_error: Any = None
        self._cond = threading.Condition()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", self._record)
        self.sio.on("connect_error", self._refused)
        self.auth = {"token": token, **auth} if token is not None else auth

    def _record(self, event: str, *args: Any) -> None:
        with self._cond:
            self.events.append((event, args[0] if len(args) == 1 else list(args)))
            self._cond.notify_all()

    def _refused(self, data: Any) -> None:
        with self._cond:
            self.connect_error = data
            self._cond.notify_all()

    def connect(
        self, headers: dict[str, str] | None = None, transport: str = "websocket"
    ) -> Client:
        self.sio.connect(
            self.url, auth=self.auth, headers=headers or {}, transports=[transport], wait_timeout=10
        )
        return self

    @property
    def sid(self) -> str:
        return self.sio.get_sid()  # type: ignore[return-value]

    def emit(self, event: str, data: Any = None) -> None:
        self.sio.emit(event, data)

    def call(self, event: str, data: Any = None, timeout: float = 5) -> Any:
        return self.sio.call(event, data, timeout=timeout)

    def received(self, event: str, where: Callable[[Any], bool] = lambda _: True) -> list[Any]:
        with self._cond:
            return [data for name, data in self.events if name == event and where(data)]

    def wait_for(
        self, event: str, where: Callable[[Any], bool] = lambda _: True, timeout: float = 5
    ) -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for name, data in self.events:
                    if name == event and where(data):
                        return data
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no {event!r} matching within {timeout}s; got {self.events!r}"
                    )
                self._cond.wait(left)

    def clear(self) -> None:
        with self._cond:
            self.events.clear()

    def disconnect(self) -> None:
        if self.sio.connected:
            self.sio.disconnect()


def presence_of(user_id: str) -> Callable[[Any], bool]:
    return lambda data: isinstance(data, dict) and data.get("user_id") == user_id


def bulk_has(user_id: str, status: str | None = None) -> Callable[[Any], bool]:
    def check(data: Any) -> bool:
        for item in data.get("users", []):
            if item["user_id"] == user_id and (status is None or item["status"] == status):
                return True
        return False

    return check
