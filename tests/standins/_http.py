"""A threaded HTTP/1.1 (keep-alive) server on 127.0.0.1 for the provider stand-ins.

Test-only plumbing: it knows nothing about any provider; subclasses answer requests.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
        return cls(
            status,
            json.dumps(payload).encode(),
            {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # bursts of parallel connects must not hit SYN retries
    allow_reuse_address = True


class StandInHTTPServer:
    """Subclasses implement `handle(request) -> Reply`; `delay` seconds pass before each
    answer, in the request's own thread, so concurrent requests overlap."""

    name = "standin"

    def __init__(self) -> None:
        self.delay = 0.0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections = 0

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted since the last reset()."""
        with self._lock:
            return self._connections

    def reset(self) -> None:
        with self._lock:
            self._connections = 0
        self.delay = 0.0

    def start(self) -> StandInHTTPServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real services

            def setup(self) -> None:
                super().setup()
                # Headers and body go out as two writes: without TCP_NODELAY, Nagle holds
                # the body until the client's delayed ACK (40 ms), which no real service does.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with outer._lock:
                    outer._connections += 1

            def do_POST(self) -> None:
                outer._dispatch(self)

            def do_GET(self) -> None:
                outer._dispatch(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the stand-in's access log would only be noise in test output

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Request(
            handler.command,
            handler.path,
            {k.lower(): v for k, v in handler.headers.items()},
            body,
        )
        reply = self.handle(request)
        delay = self.delay_for(request)
        if delay:
            time.sleep(delay)
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(reply.body)))
        handler.end_headers()
        handler.wfile.write(reply.body)

    def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    def delay_for(self, request: Request) -> float:
        return self.delay
