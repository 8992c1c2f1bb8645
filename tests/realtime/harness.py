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

import engineio
import redis
import requests
import socketio
from rq import Worker

from intake.queues import SERIALIZER
from tests.waiting import wait_until

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

    def wait_for_output(self, text: str, timeout: float = 10) -> None:
        """Until `text` appears in the process's output (every log line is flushed)."""
        wait_until(
            lambda: text in self.output(),
            timeout,
            message=lambda: f"{text!r} not in the output of {self.name}:\n{self.output()}",
        )

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
        def healthy() -> bool:
            if not self.alive():
                raise RuntimeError(f"gateway {self.name} exited:\n{self.output()}")
            try:
                return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        try:
            wait_until(healthy, START_TIMEOUT, interval=0.1)
        except AssertionError:
            self.stop()
            raise RuntimeError(
                f"gateway {self.name} did not answer in time:\n{self.output()}"
            ) from None

    def wait_closed(self, sid: str, timeout: float = 10) -> None:
        """Until this gateway has finished handling the disconnect of connection `sid`: its
        last log line for it is written once everything the disconnect emits (presence,
        typing_stop) is already queued to the other connections."""

        def closed() -> bool:
            return any(
                "event=socket_disconnected" in line and f" sid={sid} " in line
                for line in self.output().splitlines()
            )

        wait_until(closed, timeout, message=lambda: f"{sid} never closed on {self.name}")


def start_worker(name: str, env: Mapping[str, str], log_dir: Path, *extra: str) -> Process:
    """A `workers.run` process (with `extra` arguments, e.g. "--queues", "maintenance"),
    returned once it has registered with RQ (it listens next)."""
    worker = Process(name, [sys.executable, "-m", "workers.run", *extra], env, log_dir)
    connection = redis.Redis.from_url(env["REDIS_URL"])

    def registered() -> bool:
        if not worker.alive():
            raise RuntimeError(f"worker exited:\n{worker.output()}")
        workers = Worker.all(connection=connection, serializer=SERIALIZER)
        return any(w.pid == worker.proc.pid for w in workers)

    try:
        wait_until(registered, START_TIMEOUT)
    except AssertionError:
        worker.stop()
        raise RuntimeError(f"worker {name} did not start in time:\n{worker.output()}") from None
    finally:
        connection.close()
    return worker


class _InOrderEngineIOClient(engineio.Client):
    """Engine.IO's client hands each incoming message to a thread of its own, so two events
    sent in order may be recorded out of order. Here messages are handled one after the
    other on the connection's read thread, in arrival order, which is what lets a test show
    that an event did not come before a later one (Client.barrier, received(before=...)).
    A DISCONNECT from the server is still handed off: handling it closes the connection,
    which joins the read thread."""

    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "message" and not (isinstance(args[0], str) and args[0].startswith("1")):
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class _InOrderSocketIOClient(socketio.Client):
    def _engineio_client_class(self) -> type[engineio.Client]:
        return _InOrderEngineIOClient


class Client:
    """A python-socketio client that records every event it receives, in arrival order."""

    def __init__(self, url: str, token: str | None, **auth: Any):
        self.url = url
        self.events: list[tuple[str, Any]] = []
        self.connect_error: Any = None
        self._cond = threading.Condition()
        self.sio = _InOrderSocketIOClient(reconnection=False)
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
        """Returns once the gateway has run its connect handler (it answers after it)."""
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
        """The gateway's answer, sent once its handler is done: whatever the handler emitted
        (to this or any connection of this gateway) is on its way before it."""
        return self.sio.call(event, data, timeout=timeout)

    def barrier(self, event: str = "heartbeat", data: Any = None) -> int:
        """A round trip through the gateway; returns how many events were recorded when its
        answer came. The gateway answers after everything it sent this connection before it
        handled `event`, and events are recorded in arrival order, so the first that many
        events are all this connection was sent until then. `heartbeat` changes nothing
        that presence or typing depend on."""
        self.call(event, {} if data is None else data)
        with self._cond:
            return len(self.events)

    def received(
        self,
        event: str,
        where: Callable[[Any], bool] = lambda _: True,
        before: int | None = None,
    ) -> list[Any]:
        """The `event`s matching `where` recorded so far, or among the first `before`
        events (a position from index_of or barrier)."""
        with self._cond:
            recorded = self.events if before is None else self.events[:before]
            return [data for name, data in recorded if name == event and where(data)]

    def index_of(
        self,
        event: str,
        where: Callable[[Any], bool] = lambda _: True,
        timeout: float = 5,
        after: int = -1,
    ) -> int:
        """Waits for an `event` matching `where` recorded after position `after`; returns
        the position of the first one."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for index in range(after + 1, len(self.events)):
                    name, data = self.events[index]
                    if name == event and where(data):
                        return index
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no {event!r} matching within {timeout}s; got {self.events!r}"
                    )
                self._cond.wait(left)

    def wait_for(
        self,
        event: str,
        where: Callable[[Any], bool] = lambda _: True,
        timeout: float = 5,
        after: int = -1,
    ) -> Any:
        """Like index_of, but returns the event's data."""
        index = self.index_of(event, where, timeout, after)
        with self._cond:
            return self.events[index][1]

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
