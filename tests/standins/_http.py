"""An asyncio HTTP/1.1 (keep-alive) server on 127.0.0.1 for the provider stand-ins: aiohttp's
low-level server (its C parser) on an event loop of its own, in a daemon thread.

Test-only plumbing: it knows nothing about any provider; subclasses answer requests.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.standins._loop import stop_serving

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
_READ_SIZE = 64 * 1024  # requests here are a few KiB; Expo's largest well under this


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # as sent, query string included
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
        return cls(
            status,
            json.dumps(payload).encode(),
            {"Content-Type": JSON_CONTENT_TYPE, **(headers or {})},
        )


class _Connection(web.RequestHandler):
    """aiohttp's per-connection protocol, with Nagle off."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if hasattr(transport, "max_size"):
            # asyncio's recv() size: its default 256 KiB bytes per read is past glibc's mmap
            # threshold, so each request cost an mmap, mremap and munmap (and page faults).
            transport.max_size = _READ_SIZE
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # asyncio already does this for TCP transports; it matters enough to be explicit:
            # with Nagle, an answer sent in two writes waits for the client's delayed ACK
            # (40 ms), which no real service does.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class StandInHTTPServer:
    """Subclasses implement `handle(request) -> Reply`, called on the server's event loop (so
    it must be quick and must not block); `delay` seconds pass before each answer without
    holding up other requests, so concurrent requests overlap.

    State that tests read from their own thread is guarded by `_lock`. With `record` off
    (benchmarks), subclasses keep nothing per request, so memory stays bounded.
    """

    name = "standin"

    def __init__(self) -> None:
        self.delay = 0.0
        self.record = True
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._web: web.Server | None = None
        self._address: tuple[str, int] | None = None
        self._connections = 0

    @property
    def url(self) -> str:
        assert self._address is not None, "start() first"
        host, port = self._address
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
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name=f"{self.name}-standin", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), loop).result(10)
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            if self._web is not None:
                await self._web.shutdown(0.1)  # closes idle keep-alive connections too

        stop_serving(loop, thread, close)
        self._loop = self._thread = self._server = self._web = None
        self._address = None

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self._web = server = web.Server(self._respond)

        def accept() -> web.RequestHandler:
            with self._lock:
                self._connections += 1
            # auto_decompress off: a gzip request body reaches handle() as sent, so the
            # stand-in checks it the way the real service would.
            return _Connection(server, loop=loop, access_log=None, auto_decompress=False)

        # A backlog of 256: bursts of parallel connects must not hit SYN retries.
        self._server = await loop.create_server(
            accept, "127.0.0.1", 0, backlog=256, reuse_address=True
        )
        self._address = self._server.sockets[0].getsockname()[:2]

    async def _respond(self, incoming: web.BaseRequest) -> web.StreamResponse:
        request = Request(
            incoming.method,
            incoming.raw_path,
            {name.lower(): value for name, value in incoming.headers.items()},
            await incoming.read(),
        )
        reply = self.handle(request)
        delay = self.delay_for(request)
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    def delay_for(self, request: Request) -> float:
        return self.delay
