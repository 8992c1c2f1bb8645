"""Apple Push Notification service over HTTP/2 with token (.p8) auth, through aioapns.

One event loop thread per provider keeps the HTTP/2 connection open across RQ jobs;
each message gets exactly one attempt here (retries belong to the job), and nothing in
this module may log a device token or a message body.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from aioapns import APNs, NotificationRequest, PushType
from aioapns.common import PRIORITY_HIGH, PRIORITY_NORMAL, NotificationResult
from aioapns.connection import APNsBaseClientProtocol, JWTAuthorizationHeaderProvider
from aioapns.exceptions import ConnectionClosed
from aioapns.exceptions import ConnectionError as APNsConnectionError
from h2.exceptions import FlowControlError, NoAvailableStreamIDError, ProtocolError

from core.catalog import Provider
from core.config import Settings
from providers import apns_transport
from providers._loop import BackgroundLoop
from providers.app_data import with_app_copy
from providers.base import (
    Outcome,
    PushMessage,
    PushResult,
    kv,
    log_batch,
    seconds_until,
)

logger = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 4096  # alert notifications (VoIP allows 5120; Pulse sends none)
MAX_COLLAPSE_ID_BYTES = 64

# Reasons that mean the device token itself is dead. BadDeviceToken is also what a
# sandbox token sent to production (or the reverse) gets: the result flags it.
_TOKEN_REASONS = frozenset(
    {"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered", "ExpiredToken"}
)
# Reasons that mean our configuration (key, team, topic, certificate) is wrong. The topic
# comes from APNS_TOPIC, never from a notification, so topic errors are configuration too.
# ExpiredProviderToken is here as well: aioapns renews its JWT every 30 minutes, well
# inside Apple's one hour, so seeing it means a skewed clock, which retrying won't fix.
_CREDENTIAL_REASONS = frozenset(
    {
        "BadTopic",
        "MissingTopic",
        "TopicDisallowed",
        "InvalidProviderToken",
        "ExpiredProviderToken",
        "MissingProviderToken",
        "BadCertificate",
        "BadCertificateEnvironment",
        "Forbidden",
    }
)
_TRANSIENT_REASONS = frozenset(
    {
        "TooManyRequests",
        "TooManyProviderTokenUpdates",
        "InternalServerError",
        "ServiceUnavailable",
        "Shutdown",
        "IdleTimeout",
        "StreamReset",
    }
)


def classify_apns(status: int, reason: str | None) -> Outcome:
    """What an APNs answer (HTTP status and JSON "reason") means for this message."""
    if status == 200:
        return Outcome.SENT
    if status == 410 or reason in _TOKEN_REASONS:
        return Outcome.TOKEN_INVALID
    if reason in _CREDENTIAL_REASONS:
        return Outcome.CREDENTIALS_ERROR
    if reason in _TRANSIENT_REASONS or status in (429, 500, 502, 503, 504) or status == 0:
        return Outcome.TRANSIENT
    if status == 403:
        return Outcome.CREDENTIALS_ERROR
    if 400 <= status < 500:
        # BadCollapseId, BadExpirationDate, BadPriority, BadMessageId, PayloadEmpty,
        # PayloadTooLarge (413), InvalidPushType, BadPath, ...: this request, not the token.
        return Outcome.PAYLOAD_ERROR
    return Outcome.TRANSIENT


def apns_result(
    ref: str,
    status: int,
    reason: str | None,
    timestamp_ms: int | None = None,
    apns_id: str | None = None,
    latency_ms: float | None = None,
) -> PushResult:
    """A PushResult from the raw parts of an APNs answer (pure, table-tested)."""
    outcome = classify_apns(status, reason)
    since = None
    if outcome is Outcome.TOKEN_INVALID and timestamp_ms:
        since = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return PushResult(
        ref=ref,
        outcome=outcome,
        provider_message_id=apns_id or None,
        error=None if outcome is Outcome.SENT else (reason or f"HTTP_{status}"),
        token_invalid_since=since,
        environment_mismatch=reason == "BadDeviceToken",
        latency_ms=latency_ms,
    )


def collapse_id(key: str) -> str:
    """APNs rejects collapse ids over 64 bytes; a longer key becomes its sha256 (64 hex
    characters), so that every notification with the same key still collapses together."""
    if len(key.encode()) <= MAX_COLLAPSE_ID_BYTES:
        return key
    return hashlib.sha256(key.encode()).hexdigest()


def build_payload(message: PushMessage, *, compact_copy: bool = False) -> dict[str, Any]:
    """The APNs JSON: `aps` for the system; the message's data beside it as custom keys (what
    a native app reads) and its copy under `body` (what expo-notifications reads:
    providers/app_data.py), ids only when `compact_copy`.

    `aps.interruption-level` is the type's (time-sensitive for a new match, active
    otherwise); a push delivered quietly is passive and has no sound."""
    if "aps" in message.data:
        raise ValueError("the data key 'aps' is reserved by APNs")
    aps: dict[str, Any] = {"alert": {"title": message.title, "body": message.body}}
    if message.sound and not message.quiet:
        aps["sound"] = message.sound
    if message.badge is not None:
        aps["badge"] = message.badge
    if message.thread_id:
        aps["thread-id"] = message.thread_id
    if message.interruption_level:
        aps["interruption-level"] = message.interruption_level
    return {"aps": aps, **with_app_copy(message.data, compact=compact_copy)}


def payload_bytes(payload: dict[str, Any]) -> int:
    """The size of the payload exactly as aioapns will serialize it."""
    return len(json.dumps(payload, ensure_ascii=False).encode())


def build_request(message: PushMessage) -> NotificationRequest:
    """Raises ValueError when the message can never be sent as it is."""
    payload = build_payload(message)
    if payload_bytes(payload) > MAX_PAYLOAD_BYTES:
        payload = build_payload(message, compact_copy=True)
    size = payload_bytes(payload)
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(f"PayloadTooLarge: {size} bytes > {MAX_PAYLOAD_BYTES}")
    request = NotificationRequest(
        device_token=message.token,
        message=payload,
        # apns-expiration: absent means APNs stores and retries per its own policy, which
        # is what a match or a message wants; 0 would drop it for any offline device.
        time_to_live=seconds_until(message.expires_at) if message.expires_at else None,
        # 10 for critical and high; 5 for the rest and for a push delivered quietly.
        priority=int(PRIORITY_HIGH if message.is_urgent else PRIORITY_NORMAL),
        collapse_key=collapse_id(message.collapse_key) if message.collapse_key else None,
        push_type=PushType.ALERT,
    )
    return request


class ProviderToken(JWTAuthorizationHeaderProvider):
    """aioapns' provider token: one ES256 JWT, signed again once it is TOKEN_TTL (30
    minutes) old; the same, except that the time it is signed and renewed by comes from
    `clock` (time.time unless a test gives another)."""

    def __init__(
        self, key: str, key_id: str, team_id: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(key, key_id, team_id)
        self._clock = clock
        self._issued_at = 0
        self._header: str | None = None

    def get_header(self) -> str:
        now = self._clock()
        if self._header is None or self._issued_at < now - self.TOKEN_TTL:
            self._issued_at = int(now)
            token = jwt.encode(
                payload={"iss": self.team_id, "iat": self._issued_at},
                key=self.key,
                algorithm="ES256",
                headers={"kid": self.key_id},
            )
            self._header = f"bearer {token}"
        return self._header


@dataclass
class _Running:
    """The loop thread and the aioapns client of one process (rebuilt after a fork)."""

    pid: int
    loop: BackgroundLoop
    client: APNs
    connecting: asyncio.Future[APNsBaseClientProtocol] | None = None  # the one dial in progress


class APNsProvider:
    name = Provider.APNS

    def __init__(
        self,
        settings: Settings,
        *,
        max_in_flight: int = 100,
        max_connections: int = 4,
        connect_timeout: float = 5.0,
        request_timeout: float = 10.0,
        batch_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        missing = [
            name
            for name, value in (
                ("APPLE_PUSH_KEY_FILE", settings.providers.apns_key_file),
                ("APPLE_PUSH_KEY_ID", settings.providers.apns_key_id),
                ("APPLE_PUSH_TEAM_ID", settings.providers.apns_team_id),
                ("APNS_TOPIC", settings.providers.apns_topic),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"APNs needs {', '.join(missing)}")
        self._settings = settings
        self._key = Path(str(settings.providers.apns_key_file)).read_text()
        self._max_in_flight = max_in_flight
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._request_timeout = request_timeout
        self._batch_timeout = batch_timeout
        self._lock = threading.Lock()
        self._running: _Running | None = None
        self._clock = clock  # what the provider token's "iat" is read from

    # -- lifecycle -----------------------------------------------------------------

    def _ensure_running(self) -> _Running:
        with self._lock:
            running = self._running
            if running is not None and running.pid == os.getpid():
                return running
            # After a fork the loop thread did not come along, and the inherited TLS
            # sockets belong to the parent: start afresh and leave those alone.
            loop = BackgroundLoop("apns-provider")
            client = loop.run(self._create_client(), timeout=10)
            self._running = _Running(os.getpid(), loop, client)
            logger.info(
                "event=apns_started %s",
                kv(
                    host=client.pool.protocol_class.APNS_SERVER,
                    port=client.pool.protocol_class.APNS_PORT,
                    sandbox=self._settings.providers.apns_use_sandbox,
                ),
            )
            return self._running

    async def _create_client(self) -> APNs:
        # aioapns binds its pool to the running loop, so it must be built on the loop thread.
        settings = self._settings
        client = APNs(
            key=self._key,
            key_id=settings.providers.apns_key_id,
            team_id=settings.providers.apns_team_id,
            topic=settings.providers.apns_topic,
            use_sandbox=settings.providers.apns_use_sandbox,
            max_connections=self._max_connections,
            max_connection_attempts=1,
            ssl_context=apns_transport.ssl_context(settings.providers.apns_ca_file),
        )
        client.pool.protocol_class = apns_transport.protocol_class(
            settings.providers.apns_host,
            settings.providers.apns_port,
            settings.providers.apns_use_sandbox,
            ProviderToken(
                self._key,
                settings.providers.apns_key_id,
                settings.providers.apns_team_id,
                clock=self._clock,
            ),
        )
        return client

    def close(self) -> None:
        with self._lock:
            running, self._running = self._running, None
        if running is None or running.pid != os.getpid():
            return

        async def _close_connections() -> None:
            pool = running.client.pool
            pool.close()
            # TLS says goodbye in a round trip; a connection leaves the pool once it is done.
            for _ in range(100):
                if not pool.connections:
                    return
                await asyncio.sleep(0.01)

        try:
            running.loop.run(_close_connections(), timeout=5)
        finally:
            running.loop.stop()

    # -- sending -------------------------------------------------------------------

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        started = time.monotonic()
        results: list[PushResult | None] = [None] * len(messages)
        to_send: list[tuple[int, PushMessage, NotificationRequest]] = []
        for index, message in enumerate(messages):
            try:
                to_send.append((index, message, build_request(message)))
            except (ValueError, TypeError) as exc:
                # TypeError: data that JSON cannot encode.
                error = "PayloadTooLarge" if "PayloadTooLarge" in str(exc) else "BadPayload"
                results[index] = PushResult(message.ref, Outcome.PAYLOAD_ERROR, error=error)
        if to_send:
            try:
                running = self._ensure_running()
                sent = running.loop.run(
                    self._send_all(running, [(m, r) for _, m, r in to_send]),
                    timeout=self._batch_timeout + self._request_timeout,
                )
            except Exception as exc:  # a broken loop must still yield one result per message
                logger.error("event=apns_batch_failed %s", kv(error=repr(exc)))
                sent = [
                    PushResult(m.ref, Outcome.TRANSIENT, error="ClientError") for _, m, _ in to_send
                ]
            for (index, _, _), result in zip(to_send, sent, strict=True):
                results[index] = result
        final = [r for r in results if r is not None]
        log_batch(logger, self.name, final, (time.monotonic() - started) * 1000)
        return final

    async def _send_all(
        self, running: _Running, batch: list[tuple[PushMessage, NotificationRequest]]
    ) -> list[PushResult]:
        """At most max_in_flight lanes, each sending the batch's next message when its last
        one is answered (the HTTP/2 window paces the bodies: apns_transport)."""
        deadline = time.monotonic() + self._batch_timeout
        unreachable: list[str] = []  # set once a connection cannot be made: fail the rest fast
        waiting = iter(enumerate(batch))
        answered: dict[int, PushResult] = {}

        async def lane() -> None:
            for index, (message, request) in waiting:
                answered[index] = await self._send_one(
                    running, message, request, deadline, unreachable
                )

        await asyncio.gather(*(lane() for _ in range(min(len(batch), self._max_in_flight))))
        return [answered[index] for index in range(len(batch))]

    @staticmethod
    async def _connection(running: _Running, timeout: float) -> APNsBaseClientProtocol:
        """An open connection with a free stream. When there is none, every waiting message
        awaits one shared dial: aioapns' pool lock would hand the connection over one waiter
        per loop turn, and a failed dial would be retried by each waiter in turn."""
        pool = running.client.pool
        async with asyncio.timeout(timeout):
            while True:
                for connection in pool.connections:
                    if not connection.is_busy:
                        return connection
                if running.connecting is None or running.connecting.done():
                    running.connecting = asyncio.ensure_future(pool.acquire())
                    # Retrieve a failure even if every waiter has timed out and left.
                    running.connecting.add_done_callback(
                        lambda done: done.cancelled() or done.exception()
                    )
                connection = await asyncio.shield(running.connecting)
                if not connection.is_busy:
                    return connection

    async def _send_one(
        self,
        running: _Running,
        message: PushMessage,
        request: NotificationRequest,
        deadline: float,
        unreachable: list[str],
    ) -> PushResult:
        if unreachable:
            return PushResult(message.ref, Outcome.TRANSIENT, error=unreachable[0])
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return PushResult(message.ref, Outcome.TRANSIENT, error="BatchTimeout")
        started = time.monotonic()
        try:
            connection = await self._connection(running, min(self._connect_timeout, remaining))
        except (TimeoutError, APNsConnectionError, OSError, ssl.SSLError) as exc:
            error = "ConnectTimeout" if isinstance(exc, TimeoutError) else "ConnectionError"
            if not unreachable:
                unreachable.append(error)
                logger.warning("event=apns_unreachable %s", kv(error=repr(exc)))
            return PushResult(message.ref, Outcome.TRANSIENT, error=error)
        try:
            # asyncio.timeout rather than wait_for: one task fewer per message.
            async with asyncio.timeout(
                min(self._request_timeout, max(deadline - time.monotonic(), 0.001))
            ):
                response: NotificationResult = await connection.send_notification(request)
        except TimeoutError:
            return PushResult(message.ref, Outcome.TRANSIENT, error="Timeout")
        except NoAvailableStreamIDError:
            connection.close()  # stream ids exhausted: the next message opens a new connection
            return PushResult(message.ref, Outcome.TRANSIENT, error="ConnectionExhausted")
        except (ConnectionClosed, FlowControlError, ProtocolError, OSError) as exc:
            return PushResult(message.ref, Outcome.TRANSIENT, error=type(exc).__name__)
        latency_ms = (time.monotonic() - started) * 1000
        try:
            status = int(response.status or 0)
        except ValueError:
            status = 0
        result = apns_result(
            message.ref,
            status,
            response.description,
            response.timestamp,
            response.notification_id,
            latency_ms,
        )
        if result.outcome is Outcome.CREDENTIALS_ERROR:
            logger.error("event=apns_credentials_error %s", kv(status=status, reason=result.error))
        return result
