"""aioapns' HTTP/2 connection, pointed where the settings say and hardened where it leaks.

Only transport concerns live here (endpoint, TLS trust, HTTP/2 bookkeeping); it never
decides what an APNs answer means (that is `apns.classify_apns`) and never logs a token.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from typing import Any, ClassVar

from aioapns.common import NotificationRequest, NotificationResult
from aioapns.connection import (
    APNsDevelopmentClientProtocol,
    APNsProductionClientProtocol,
    APNsTLSClientProtocol,
    AuthorizationHeaderProvider,
)
from aioapns.exceptions import ConnectionClosed
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from hpack import Encoder


class LiteralHeaderEncoder(Encoder):
    """HPACK without Huffman coding: each request's unique header values (path with the
    device token, apns-id, collapse id) cost pure-Python Huffman work on both ends for a
    few bytes saved; literal strings are equally valid HPACK (RFC 7541 5.2)."""

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        return super().encode(headers, huffman=False)


class RecentlyClosedH2Connection(H2Connection):
    """h2 remembers how the last 65,536 streams of a connection closed (about 7 MiB of a
    worker's memory per APNs connection, filling over the first 65,536 pushes); a few times
    Apple's at most 1,000 concurrent streams is plenty to recognise a late frame."""

    MAX_CLOSED_STREAMS = 4096


# aioapns closes a connection after 10 s without traffic, which defeats reuse across RQ
# jobs; two minutes stays well below common NAT idle timeouts (about 5 minutes).
INACTIVITY_SECONDS = 120


class PulseAPNsProtocol(APNsTLSClientProtocol):
    """aioapns' client protocol with its response bookkeeping replaced.

    Why: aioapns 4.0 (a) never acknowledges received DATA, so after about 64 KiB of error
    bodies on one connection APNs cannot send any more responses; (b) parses each DATA frame
    as a whole JSON document; (c) matches error statuses to requests through the echoed
    apns-id and leaks one dict entry per successful stream; (d) never resolves a request
    whose stream is reset. Here a response is assembled per stream id and resolved when the
    stream ends or is reset; flow-control credit is returned as soon as data arrives.
    (e) aioapns signs a new provider JWT for every new connection; reconnecting more often
    than every 20 minutes then earns 429 TooManyProviderTokenUpdates, so all connections
    of a process share one JWT (renewed every 30 minutes by aioapns' own provider).
    (f) aioapns sends a body whatever the HTTP/2 flow-control window holds, and a full
    window is a FlowControlError with the headers already sent; here the body waits for
    the peer's WINDOW_UPDATE. Cost per request: (g) aioapns writes to the TLS transport
    once per request; here the frames of every request started in one loop turn leave in
    one write; (h) headers are HPACK-encoded without Huffman and h2 does not re-validate
    the headers aioapns builds; (i) h2 remembers fewer closed streams.
    """

    INACTIVITY_TIME = INACTIVITY_SECONDS
    shared_authorization: ClassVar[AuthorizationHeaderProvider | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.auth_provider is not None and self.shared_authorization is not None:
            self.auth_provider = self.shared_authorization
        self.conn = RecentlyClosedH2Connection()
        self.conn.encoder = LiteralHeaderEncoder()
        self.conn.config.validate_outbound_headers = False
        self.conn.config.normalize_outbound_headers = False
        self._flush_scheduled = False
        self._window_waiters: list[asyncio.Future[None]] = []
        self._statuses: dict[int, str] = {}
        self._response_ids: dict[int, str] = {}
        self._bodies: dict[int, bytearray] = {}

    async def send_notification(self, request: NotificationRequest) -> NotificationResult:
        """aioapns' request, its body held back until the flow-control window has room."""
        stream_id = await self.free_channels.acquire()
        body = json.dumps(request.message, ensure_ascii=False).encode()
        try:
            self.conn.send_headers(stream_id=stream_id, headers=self._headers(request))
            while self.conn.local_flow_control_window(stream_id) < len(body):
                if self.transport is None or self.transport.is_closing():
                    raise ConnectionClosed()
                waiter = self.loop.create_future()
                self._window_waiters.append(waiter)
                await waiter
            self.conn.send_data(stream_id=stream_id, data=body, end_stream=True)
        except BaseException:
            self._abandon(stream_id)
            raise
        self.flush()
        future: asyncio.Future[NotificationResult] = self.loop.create_future()
        self.requests[request.notification_id] = future
        self.request_streams[stream_id] = request.notification_id
        return await future

    def _headers(self, request: NotificationRequest) -> list[tuple[str, str]]:
        """The headers aioapns 4.0 sends (aioapns.connection.APNsBaseClientProtocol)."""
        headers = [
            (":method", "POST"),
            (":scheme", "https"),
            (":path", f"/3/device/{request.device_token}"),
            ("host", self.APNS_SERVER),
            ("apns-id", request.notification_id),
            ("apns-topic", request.apns_topic or self.apns_topic),
        ]
        if request.time_to_live is not None:
            headers.append(("apns-expiration", str(int(time.time()) + request.time_to_live)))
        if request.priority is not None:
            headers.append(("apns-priority", str(request.priority)))
        if request.collapse_key is not None:
            headers.append(("apns-collapse-id", request.collapse_key))
        if request.push_type is not None:
            headers.append(("apns-push-type", request.push_type.value))
        if self.auth_provider:
            headers.append(("authorization", self.auth_provider.get_header()))
        return headers

    def _abandon(self, stream_id: int) -> None:
        """A stream whose body will never be sent: reset it and give its slot back."""
        try:
            self.conn.reset_stream(stream_id)
            self.flush()
        except Exception:  # the connection is already gone; nothing to tell the peer
            pass
        self.free_channels.release()

    def _wake_window_waiters(self) -> None:
        waiters, self._window_waiters = self._window_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        for event in self.conn.receive_data(data):
            if isinstance(event, ResponseReceived):
                headers = dict(event.headers or [])
                self._statuses[event.stream_id] = _text(headers.get(b":status"))
                self._response_ids[event.stream_id] = _text(headers.get(b"apns-id"))
            elif isinstance(event, DataReceived):
                self._bodies.setdefault(event.stream_id, bytearray()).extend(event.data or b"")
                self.conn.acknowledge_received_data(
                    event.flow_controlled_length or 0, event.stream_id
                )
            elif isinstance(event, StreamEnded):
                self._finish(event.stream_id, reset=False)
            elif isinstance(event, StreamReset):
                self._finish(event.stream_id, reset=True)
            elif isinstance(event, WindowUpdated):
                self._wake_window_waiters()
            elif isinstance(event, RemoteSettingsChanged):
                self.on_remote_settings_changed(event.changed_settings)
                self._wake_window_waiters()  # a new initial window size
            elif isinstance(event, ConnectionTerminated):
                self.on_connection_terminated(event)
        self.flush()

    def flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_scheduled = False
        if self.transport is None or self.transport.is_closing():
            return
        super().flush()

    def connection_lost(self, exc: Exception | None) -> None:
        # aioapns fails every pending future here; one a caller already abandoned (timed
        # out, so cancelled) would raise InvalidStateError and abort that clean-up.
        for notification_id, future in list(self.requests.items()):
            if future.done():
                del self.requests[notification_id]
        self._wake_window_waiters()  # they find the connection closed
        super().connection_lost(exc)

    def _finish(self, stream_id: int, *, reset: bool) -> None:
        status = self._statuses.pop(stream_id, "")
        response_id = self._response_ids.pop(stream_id, "")
        body = bytes(self._bodies.pop(stream_id, b""))
        notification_id = self.request_streams.pop(stream_id, None)
        self.free_channels.release()
        if notification_id is None:
            return
        future = self.requests.pop(notification_id, None)
        if future is None or future.done():  # the caller timed out and went away
            return
        if reset:
            future.set_result(NotificationResult(notification_id, "", "StreamReset"))
            return
        reason, timestamp = _error_body(body)
        future.set_result(
            NotificationResult(response_id or notification_id, status, reason, timestamp)
        )


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _error_body(body: bytes) -> tuple[str | None, int | None]:
    """APNs error bodies are {"reason": ..., "timestamp": ms}; success bodies are empty."""
    if not body:
        return None, None
    try:
        parsed = json.loads(body)
    except ValueError:
        return "UnparsableResponse", None
    if not isinstance(parsed, dict):
        return "UnparsableResponse", None
    reason = parsed.get("reason")
    timestamp = parsed.get("timestamp")
    return (
        str(reason) if reason else None,
        int(timestamp) if isinstance(timestamp, int | float) else None,
    )


def protocol_class(
    host: str | None,
    port: int,
    sandbox: bool,
    authorization: AuthorizationHeaderProvider | None = None,
) -> type[PulseAPNsProtocol]:
    """aioapns takes its destination from class attributes, hence a class per endpoint."""
    default = APNsDevelopmentClientProtocol if sandbox else APNsProductionClientProtocol
    attributes = {
        "APNS_SERVER": host or default.APNS_SERVER,
        "APNS_PORT": port,
        "shared_authorization": authorization,
    }
    return type("PulseAPNsEndpointProtocol", (PulseAPNsProtocol,), attributes)


def ssl_context(extra_ca_file: str | None) -> ssl.SSLContext:
    """System trust plus one optional extra CA (a local stand-in's); HTTP/2 via ALPN."""
    context = ssl.create_default_context()
    if extra_ca_file:
        context.load_verify_locations(cafile=extra_ca_file)
    context.set_alpn_protocols(["h2"])
    return context
