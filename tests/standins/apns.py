"""A local APNs: TLS + HTTP/2 (h2) on 127.0.0.1 that checks what Apple checks (ES256
provider JWT, topic, device path, header values) and answers in Apple's wire format.

Test-only: it records device tokens in memory so tests can assert on them, and must never
be reachable from anything but the test process.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    StreamEnded,
    StreamReset,
)
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes, Settings

from tests.standins._loop import stop_serving
from tests.standins.keys import make_apns_key, make_tls_files

_TOKEN = re.compile(r"^[0-9a-fA-F]{64,200}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PUSH_TYPES = {
    "alert",
    "background",
    "voip",
    "complication",
    "fileprovider",
    "mdm",
    "liveactivity",
    "location",
    "pushtotalk",
}
MAX_PAYLOAD = 4096
JWT_MAX_AGE = 3600  # Apple refuses provider tokens older than one hour
# Provider tokens whose signature was checked once, as APNs itself keeps them: a client
# reuses one token for 20 to 60 minutes, so a handful of entries is plenty.
MAX_VERIFIED_TOKENS = 64


@dataclass(frozen=True)
class APNsRequest:
    """One notification as the stand-in received it, and what it answered."""

    token: str
    headers: dict[str, str]
    payload: dict[str, Any] | None
    connection: int  # 1 for the first TLS connection accepted since reset(), 2 next, ...
    status: int
    reason: str | None


@dataclass
class _Rule:
    status: int
    reason: str
    timestamp_ms: int | None
    remaining: int | None  # None: forever


@dataclass
class _Stream:
    headers: dict[str, str]
    body: bytearray = field(default_factory=bytearray)


@dataclass
class _Connection:
    """One client connection: its HTTP/2 state, requests being received, answers not yet due."""

    number: int  # 1 for the first connection accepted since reset(), 2 next, ...
    h2: H2Connection
    writer: asyncio.StreamWriter
    streams: dict[int, _Stream] = field(default_factory=dict)
    due: dict[int, asyncio.TimerHandle] = field(default_factory=dict)  # stream id -> answer
    flush_scheduled: bool = False


class APNsStandIn:
    """Start with start(); point the client at it with `client_env()`; stop with stop()."""

    def __init__(
        self,
        *,
        topic: str = "com.pulse.dating",
        team_id: str = "TEAM123456",
        key_id: str = "KEYID12345",
        directory: Path | None = None,
        max_concurrent_streams: int = 1000,
        validate_headers: bool = True,
    ) -> None:
        self.topic = topic
        self.team_id = team_id
        self.key_id = key_id
        self.directory = directory or Path(tempfile.mkdtemp(prefix="pulse-apns-standin-"))
        self.tls = make_tls_files(self.directory / "tls")
        self.key_file = self.directory / f"AuthKey_{key_id}.p8"
        self.public_key = make_apns_key(self.key_file)
        self.max_concurrent_streams = max_concurrent_streams
        # h2's checks of each received header block (names, pseudo-headers, connection
        # headers), as Apple's server makes them. A quarter of the stand-in's CPU per request:
        # the benchmark turns them off, since aioapns' h2 already checks what it sends.
        self.validate_headers = validate_headers
        self.delay = 0.0  # seconds before each answer, applied per stream (streams overlap)
        self.record = True  # off (benchmarks): keep no APNsRequest, so memory stays bounded
        self.host = "127.0.0.1"
        self.port = 0
        self._lock = threading.Lock()
        self._rules: dict[str, _Rule] = {}
        self._received: list[APNsRequest] = []
        self._connections = 0
        self._max_concurrent_seen = 0
        self._in_progress = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._active: dict[asyncio.StreamWriter, H2Connection] = {}
        # Provider token -> its "iat", once its signature, key id and issuer were checked.
        # Only the loop thread uses it, and an entry never goes stale (the age is checked on
        # every request), so reset() leaves it alone.
        self._verified_tokens: dict[str, Any] = {}

    # -- control -------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def client_env(self) -> dict[str, str]:
        """The Pulse environment variables that point the real APNs client here."""
        return {
            "APPLE_PUSH_KEY_FILE": str(self.key_file),
            "APPLE_PUSH_KEY_ID": self.key_id,
            "APPLE_PUSH_TEAM_ID": self.team_id,
            "APNS_TOPIC": self.topic,
            "APNS_HOST": self.host,
            "APNS_PORT": str(self.port),
            "APNS_CA_FILE": str(self.tls.ca_file),
        }

    def respond(
        self,
        token: str,
        status: int,
        reason: str,
        *,
        timestamp_ms: int | None = None,
        times: int | None = None,
    ) -> None:
        """Answer (status, reason[, timestamp]) for this token: `times` times, or always."""
        with self._lock:
            self._rules[token.lower()] = _Rule(status, reason, timestamp_ms, times)

    def reset(self) -> None:
        """Forget rules, records and counters (open connections stay open)."""
        with self._lock:
            self._rules.clear()
            self._received.clear()
            self._connections = 0
            self._max_concurrent_seen = 0
            self.delay = 0.0

    @property
    def received(self) -> list[APNsRequest]:
        with self._lock:
            return list(self._received)

    @property
    def connections_opened(self) -> int:
        """TLS connections accepted since the last reset()."""
        with self._lock:
            return self._connections

    @property
    def max_concurrent_seen(self) -> int:
        """The most requests the stand-in was answering at the same moment."""
        with self._lock:
            return self._max_concurrent_seen

    def drop_connections(self) -> None:
        """GOAWAY and close every open connection, as APNs does when it recycles them."""

        async def drop() -> None:
            for writer, conn in list(self._active.items()):
                conn.close_connection()
                writer.write(conn.data_to_send())
                writer.close()

        assert self._loop is not None, "start() first"
        asyncio.run_coroutine_threadsafe(drop(), self._loop).result(5)

    def start(self) -> APNsStandIn:
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._listen())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="apns-standin", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the APNs stand-in did not start")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._active):
                writer.close()

        stop_serving(loop, thread, close)
        self._loop = self._thread = None

    # -- server --------------------------------------------------------------------

    async def _listen(self) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
        context.set_alpn_protocols(["h2"])
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        protocol = ssl_object.selected_alpn_protocol() if ssl_object else None
        if protocol not in (None, "h2"):  # APNs speaks HTTP/2 only
            writer.close()
            return
        with self._lock:
            self._connections += 1
            number = self._connections
        conn = H2Connection(
            H2Configuration(
                client_side=False,
                header_encoding="utf-8",
                validate_inbound_headers=self.validate_headers,
                # Our own response headers are known to be valid: no checks, no rewriting.
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        self._active[writer] = conn
        # As initial values, so that the limit holds before the client acknowledges it.
        conn.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: self.max_concurrent_streams,
                SettingCodes.MAX_HEADER_LIST_SIZE: 8000,
            },
        )
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        connection = _Connection(number, conn, writer)
        streams = connection.streams
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                try:
                    events = conn.receive_data(data)
                except ProtocolError:
                    writer.write(conn.data_to_send())
                    break
                for event in events:
                    if isinstance(event, RequestReceived):
                        streams[event.stream_id] = _Stream(dict(event.headers or []))
                    elif isinstance(event, DataReceived):
                        stream = streams.get(event.stream_id)
                        if stream is not None:
                            stream.body.extend(event.data or b"")
                        conn.acknowledge_received_data(
                            event.flow_controlled_length or 0, event.stream_id
                        )
                    elif isinstance(event, StreamEnded):
                        stream = streams.pop(event.stream_id, None)
                        if stream is not None:
                            self._request(connection, event.stream_id, stream)
                    elif isinstance(event, StreamReset):
                        streams.pop(event.stream_id, None)
                    elif isinstance(event, ConnectionTerminated):
                        break
                # One write for the whole batch, answers given without delay included.
                writer.write(conn.data_to_send())
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            for handle in connection.due.values():
                handle.cancel()
            with self._lock:
                self._in_progress -= len(connection.due)
            connection.due.clear()
            self._active.pop(writer, None)
            writer.close()

    def _request(self, connection: _Connection, stream_id: int, stream: _Stream) -> None:
        """A complete request: decide the answer now, send it `delay` seconds later."""
        payload = _json_object(stream.body)
        status, reason, timestamp_ms = self._decide(stream, payload)
        request = None
        if self.record:
            request = APNsRequest(
                token=stream.headers.get(":path", "").rsplit("/", 1)[-1],
                headers=stream.headers,
                payload=payload,
                connection=connection.number,
                status=status,
                reason=reason,
            )
        delay = self.delay
        with self._lock:
            if request is not None:
                self._received.append(request)
            self._max_concurrent_seen = max(self._max_concurrent_seen, self._in_progress + 1)
            if delay:
                self._in_progress += 1
        if not delay:  # the caller writes once for the whole batch of events
            self._answer(connection, stream_id, stream, status, reason, timestamp_ms)
            return
        # A timer, not a task per stream: the answers of one batch fall due together, and
        # one flush then writes them all.
        connection.due[stream_id] = asyncio.get_running_loop().call_later(
            delay, self._answer_due, connection, stream_id, stream, status, reason, timestamp_ms
        )

    def _answer_due(
        self,
        connection: _Connection,
        stream_id: int,
        stream: _Stream,
        status: int,
        reason: str | None,
        timestamp_ms: int | None,
    ) -> None:
        del connection.due[stream_id]
        with self._lock:
            self._in_progress -= 1
        self._answer(connection, stream_id, stream, status, reason, timestamp_ms)
        if not connection.flush_scheduled:
            connection.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush, connection)

    @staticmethod
    def _flush(connection: _Connection) -> None:
        connection.flush_scheduled = False
        data = connection.h2.data_to_send()
        if data and not connection.writer.is_closing():
            connection.writer.write(data)

    @staticmethod
    def _answer(
        connection: _Connection,
        stream_id: int,
        stream: _Stream,
        status: int,
        reason: str | None,
        timestamp_ms: int | None,
    ) -> None:
        apns_id = stream.headers.get("apns-id") or str(uuid.uuid4())
        body = b""
        if reason is not None:
            error: dict[str, Any] = {"reason": reason}
            if timestamp_ms is not None:
                error["timestamp"] = timestamp_ms
            body = json.dumps(error).encode()
        headers = [(":status", str(status)), ("apns-id", apns_id)]
        if body:
            headers += [("content-type", "application/json"), ("content-length", str(len(body)))]
        try:
            connection.h2.send_headers(stream_id, headers, end_stream=not body)
            if body:
                connection.h2.send_data(stream_id, body, end_stream=True)
        except ProtocolError:
            pass  # the client reset the stream or is closing the connection

    def _decide(
        self, stream: _Stream, payload: dict[str, Any] | None
    ) -> tuple[int, str | None, int | None]:
        """Apple's checks, in Apple's order: path, auth, topic, token, headers, payload."""
        headers = stream.headers
        path = headers.get(":path", "")
        if headers.get(":method") != "POST":
            return 405, "MethodNotAllowed", None
        if not path.startswith("/3/device/"):
            return 404, "BadPath", None
        auth_error = self._check_jwt(headers.get("authorization"))
        if auth_error:
            return 403, auth_error, None
        topic = headers.get("apns-topic")
        if not topic:
            return 400, "MissingTopic", None
        if topic != self.topic:
            return 400, "BadTopic", None
        token = path[len("/3/device/") :]
        if not _TOKEN.match(token):
            return 400, "BadDeviceToken", None
        if headers.get("apns-id") and not _UUID.match(headers["apns-id"]):
            return 400, "BadMessageId", None
        if headers.get("apns-push-type", "alert") not in _PUSH_TYPES:
            return 400, "InvalidPushType", None
        if headers.get("apns-priority", "10") not in ("1", "5", "10"):
            return 400, "BadPriority", None
        if not headers.get("apns-expiration", "0").isdigit():
            return 400, "BadExpirationDate", None
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return 400, "BadCollapseId", None
        if not stream.body:
            return 400, "PayloadEmpty", None
        if len(stream.body) > MAX_PAYLOAD:
            return 413, "PayloadTooLarge", None
        if payload is None or not isinstance(payload.get("aps"), dict):
            return 400, "BadPayload", None
        if self._rules:
            with self._lock:
                rule = self._rules.get(token.lower())
                if rule is not None and rule.remaining != 0:
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule.status, rule.reason, rule.timestamp_ms
        return 200, None, None

    def _check_jwt(self, authorization: str | None) -> str | None:
        if not authorization:
            return "MissingProviderToken"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "InvalidProviderToken"
        issued_at = self._verified_tokens.get(token)
        if issued_at is None:
            issued_at = self._verify_jwt(token)
            if issued_at is None:
                return "InvalidProviderToken"
            if len(self._verified_tokens) >= MAX_VERIFIED_TOKENS:
                self._verified_tokens.clear()
            self._verified_tokens[token] = issued_at
        if issued_at < time.time() - JWT_MAX_AGE:
            return "ExpiredProviderToken"
        return None

    def _verify_jwt(self, token: str) -> Any:
        """The token's "iat" if its ES256 signature, key id and issuer are ours, else None."""
        try:
            decoded = jwt.decode_complete(
                token,
                self.public_key,
                algorithms=["ES256"],
                options={"require": ["iss", "iat"], "verify_exp": False},
                leeway=60,  # an "iat" a little in the future is clock skew, more is refused
            )
        except jwt.PyJWTError:
            return None
        claims = decoded["payload"]
        if decoded["header"].get("kid") != self.key_id or claims.get("iss") != self.team_id:
            return None
        return claims["iat"]


def _json_object(body: bytes | bytearray) -> dict[str, Any] | None:
    """The body as a JSON object, or None (empty, not JSON, or not an object)."""
    if not body:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None
