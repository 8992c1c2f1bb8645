"""Firebase Cloud Messaging HTTP v1 (Android, web): pyfcm builds each message, one POST each.

The POSTs go out concurrently from one event loop thread per process, over one aiohttp
keep-alive pool, all with one OAuth token; each message gets exactly one attempt here
(retries belong to the job). Nothing in this module may log a device token or a body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import requests
from google.auth import exceptions as auth_exceptions
from google.oauth2 import service_account

from core.catalog import Provider
from core.config import Settings
from providers._loop import BackgroundLoop
from providers.app_data import with_app_copy
from providers.base import (
    Outcome,
    PushMessage,
    PushResult,
    kv,
    log_batch,
    parse_retry_after,
    seconds_until,
)
from providers.fcm_client import (
    FCM_SCOPE,
    AccessTokenSource,
    FCMTransport,
    SingleAttemptFCM,
)

# Messages in flight (and connections) per worker process: FCM v1 takes one message per
# HTTP/1.1 request. At FCM's usual 30-100 ms per answer that is 600-2,000 messages/s.
FCM_CONCURRENCY = 64

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4096
_FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
_ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
# FCM refuses these data keys (https://firebase.google.com/docs/cloud-messaging/concept-options)
_RESERVED_KEYS = frozenset({"from", "notification", "message_type"})
_RESERVED_PREFIXES = ("google", "gcm")


@dataclass(frozen=True)
class FcmError:
    """The parts of an FCM v1 error body that decide what it means."""

    status: str | None = None  # google.rpc status, e.g. "INVALID_ARGUMENT"
    error_code: str | None = None  # FcmError.errorCode, e.g. "UNREGISTERED"
    message: str = ""
    fields: tuple[str, ...] = ()  # BadRequest fieldViolations[].field, e.g. "message.token"
    reasons: tuple[str, ...] = ()  # ErrorInfo reasons, e.g. "ACCESS_TOKEN_EXPIRED"

    def code(self, http_status: int) -> str:
        return self.error_code or self.status or f"HTTP_{http_status}"

    @property
    def is_about_token(self) -> bool:
        return "message.token" in self.fields or "registration token" in self.message.lower()


def parse_fcm_error(body: Any) -> FcmError:
    """Read {"error": {"code", "message", "status", "details": [...]}}; anything else is empty."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return FcmError()
    error_code = None
    fields: list[str] = []
    reasons: list[str] = []
    for detail in error.get("details") or []:
        if not isinstance(detail, Mapping):
            continue
        kind = detail.get("@type")
        if kind == _FCM_ERROR_TYPE and detail.get("errorCode"):
            error_code = str(detail["errorCode"])
        elif kind == _BAD_REQUEST_TYPE:
            fields += [
                str(v.get("field", ""))
                for v in detail.get("fieldViolations") or []
                if isinstance(v, Mapping)
            ]
        elif kind == _ERROR_INFO_TYPE or "reason" in detail:
            reasons.append(str(detail.get("reason", "")))
    return FcmError(
        status=str(error["status"]) if error.get("status") else None,
        error_code=error_code,
        message=str(error.get("message") or ""),
        fields=tuple(fields),
        reasons=tuple(reasons),
    )


def classify_fcm(http_status: int, error: FcmError | None = None) -> Outcome:
    """What an FCM v1 answer means for this message (errorCode first, then status)."""
    if 200 <= http_status < 300:
        return Outcome.SENT
    error = error or FcmError()
    code = error.error_code
    if code == "UNREGISTERED":
        return Outcome.TOKEN_INVALID
    if code in ("SENDER_ID_MISMATCH", "THIRD_PARTY_AUTH_ERROR", "APNS_AUTH_ERROR"):
        return Outcome.CREDENTIALS_ERROR
    if code in ("UNAVAILABLE", "INTERNAL", "QUOTA_EXCEEDED"):
        return Outcome.TRANSIENT
    if code == "INVALID_ARGUMENT" or error.status == "INVALID_ARGUMENT" or http_status == 400:
        # The registration token is one of the arguments; anything else (too big, bad
        # data, bad ttl) is this message's fault and must not cost the device its token.
        return Outcome.TOKEN_INVALID if error.is_about_token else Outcome.PAYLOAD_ERROR
    if "ACCESS_TOKEN_EXPIRED" in error.reasons:
        return Outcome.TRANSIENT  # a fresh OAuth token fixes it; the token source is reset
    if http_status in (401, 403) or error.status in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return Outcome.CREDENTIALS_ERROR
    if http_status == 404:
        return Outcome.CREDENTIALS_ERROR  # NOT_FOUND without UNREGISTERED: wrong project/URL
    if http_status == 429 or http_status >= 500:
        return Outcome.TRANSIENT
    if error.status in ("RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED"):
        return Outcome.TRANSIENT
    return Outcome.PAYLOAD_ERROR if 400 <= http_status < 500 else Outcome.TRANSIENT


def fcm_result(
    ref: str,
    http_status: int,
    body: Any,
    retry_after: str | None = None,
    latency_ms: float | None = None,
) -> PushResult:
    """A PushResult from an FCM answer (pure, table-tested)."""
    error = parse_fcm_error(body)
    outcome = classify_fcm(http_status, error)
    if outcome is Outcome.SENT:
        name = body.get("name") if isinstance(body, Mapping) else None
        return PushResult(ref, outcome, provider_message_id=name, latency_ms=latency_ms)
    return PushResult(
        ref,
        outcome,
        error=error.code(http_status),
        retry_after=parse_retry_after(retry_after) if outcome is Outcome.TRANSIENT else None,
        latency_ms=latency_ms,
    )


def data_as_strings(data: Mapping[str, Any]) -> dict[str, str]:
    """FCM data values must be strings: anything else travels as its JSON text."""
    converted = {}
    for key, value in data.items():
        key = str(key)
        if key in _RESERVED_KEYS or key.lower().startswith(_RESERVED_PREFIXES):
            raise ValueError(f"ReservedDataKey: {key!r} is reserved by FCM")
        if isinstance(value, str):
            converted[key] = value
        else:
            converted[key] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return converted


def message_data(message: PushMessage, *, compact_copy: bool = False) -> dict[str, str]:
    """The FCM `data`: the message's data keys as strings (what a native app reads) and its
    copy as one JSON string under `body` (what expo-notifications reads:
    providers/app_data.py), ids only when `compact_copy`."""
    return data_as_strings(with_app_copy(message.data, compact=compact_copy))


def android_config(message: PushMessage) -> dict[str, Any]:
    """`android`: the delivery priority, collapse key and ttl; the notification's channel
    (the type's, or the low-importance `quiet` one), tag and sound. A push delivered quietly
    goes at normal priority with no sound, vibration or light on the devices that still
    read them from the message (Android 7.1 and older: 8 and newer follow the channel)."""
    config: dict[str, Any] = {"priority": "high" if message.is_urgent else "normal"}
    if message.collapse_key:
        config["collapse_key"] = message.collapse_key
    if message.expires_at:
        config["ttl"] = f"{seconds_until(message.expires_at)}s"
    notification: dict[str, Any] = {}
    if message.channel:
        notification["channel_id"] = message.channel
    if message.thread_id:
        notification["tag"] = message.thread_id  # a newer one replaces the shown one
    if message.quiet:
        notification["default_sound"] = False
        notification["default_vibrate_timings"] = False
        notification["default_light_settings"] = False
        notification["notification_priority"] = "PRIORITY_LOW"
    elif message.sound:
        notification["sound"] = message.sound
    if message.badge is not None:
        notification["notification_count"] = message.badge
    if notification:
        config["notification"] = notification
    return config


def _render(client: SingleAttemptFCM, message: PushMessage, *, compact_copy: bool = False) -> bytes:
    """The HTTP v1 request body, built by pyfcm."""
    return client.parse_payload(
        fcm_token=message.token,
        notification_title=message.title,
        notification_body=message.body,
        data_payload=message_data(message, compact_copy=compact_copy),
        android_config=android_config(message),
    )


@dataclass
class _Running:
    """Per-process machinery, rebuilt after a fork (threads and sockets don't survive it)."""

    pid: int
    loop: BackgroundLoop
    client: SingleAttemptFCM
    tokens: AccessTokenSource
    transport: FCMTransport


# A forked child keeps what it inherited referenced for good. Collected, aiohttp's connector
# would close the parent's pooled connections, and closing an asyncio transport unregisters
# its socket from the epoll instance the child shares with the parent: the parent would stop
# hearing answers on those connections. (Forked children leave through os._exit.)
_INHERITED: list[_Running] = []


class _NoAccessToken(Exception):
    """No OAuth token for this batch: every message in it gets this outcome and error."""

    def __init__(self, outcome: Outcome, error: str) -> None:
        super().__init__(error)
        self.outcome = outcome
        self.error = error


class FCMProvider:
    name = Provider.FCM

    def __init__(
        self,
        settings: Settings,
        *,
        max_in_flight: int = FCM_CONCURRENCY,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
    ) -> None:
        if not settings.providers.fcm_service_account_file:
            raise ValueError("FCM needs FCM_SERVICE_ACCOUNT_FILE")
        # google-auth reads token_uri from the file: that is where the OAuth token comes from.
        self._credentials = service_account.Credentials.from_service_account_file(
            settings.providers.fcm_service_account_file, scopes=[FCM_SCOPE]
        )
        # pyfcm prefers the service account's project; FCM_PROJECT_ID fills in when absent.
        self._project_id = self._credentials.project_id or settings.providers.fcm_project_id
        if not self._project_id:
            raise ValueError("FCM needs a project id: in the service account or FCM_PROJECT_ID")
        self._endpoint = settings.providers.fcm_endpoint
        self._max_in_flight = max_in_flight
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._lock = threading.Lock()
        self._running: _Running | None = None

    @property
    def token_fetches(self) -> int:
        """OAuth token requests made by this process (for tests and metrics)."""
        return self._running.tokens.fetches if self._running else 0

    def _ensure_running(self) -> _Running:
        with self._lock:
            running = self._running
            if running is not None and running.pid == os.getpid():
                return running
            # After a fork the loop thread did not come along, and the inherited sockets
            # belong to the parent: start afresh and leave those alone (see _INHERITED).
            if running is not None:
                _INHERITED.append(running)
            tokens = AccessTokenSource(self._credentials)
            client = SingleAttemptFCM(self._credentials, self._project_id, self._endpoint, tokens)
            loop = BackgroundLoop("fcm-provider")
            try:
                transport = loop.run(
                    FCMTransport.open(
                        client.fcm_end_point,
                        self._max_in_flight,
                        self._connect_timeout,
                        self._read_timeout,
                    ),
                    timeout=10,
                )
            except BaseException:
                loop.stop()  # no thread left behind for a provider that never started
                raise
            self._running = _Running(os.getpid(), loop, client, tokens, transport)
            logger.info(
                "event=fcm_started %s", kv(endpoint=self._endpoint, project=self._project_id)
            )
            return self._running

    def close(self) -> None:
        with self._lock:
            running, self._running = self._running, None
        if running is None or running.pid != os.getpid():
            return
        try:
            running.loop.run(running.transport.close(), timeout=5)
        except Exception as exc:  # closing must not fail the caller's shutdown
            logger.warning("event=fcm_close_error %s", kv(error=repr(exc)))
        finally:
            running.loop.stop()
            running.tokens.close()

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        started = time.monotonic()
        running = self._ensure_running()
        results: list[PushResult | None] = [None] * len(messages)
        payloads: dict[int, bytes] = {}
        for index, message in enumerate(messages):
            try:
                payload = _render(running.client, message)
                if len(payload) > MAX_MESSAGE_BYTES:
                    payload = _render(running.client, message, compact_copy=True)
            except (ValueError, TypeError) as exc:
                error = "ReservedDataKey" if "ReservedDataKey" in str(exc) else "BadData"
                results[index] = PushResult(message.ref, Outcome.PAYLOAD_ERROR, error=error)
                continue
            if len(payload) > MAX_MESSAGE_BYTES:
                results[index] = PushResult(
                    message.ref, Outcome.PAYLOAD_ERROR, error="MessageTooBig"
                )
                continue
            payloads[index] = payload
        if payloads:
            try:
                access_token = self._access_token(running)
            except _NoAccessToken as failure:
                for index in payloads:
                    results[index] = PushResult(
                        messages[index].ref, failure.outcome, error=failure.error
                    )
            else:
                sent = self._post_all(running, messages, payloads, access_token)
                for index in payloads:
                    results[index] = sent[index]
        final = [r for r in results if r is not None]
        log_batch(logger, self.name, final, (time.monotonic() - started) * 1000)
        return final

    def _access_token(self, running: _Running) -> str:
        """Fetch (or reuse) the OAuth token once per batch, in the job's thread: a refresh
        is a blocking HTTP request and must not hold up the event loop."""
        try:
            return running.tokens.get()
        except auth_exceptions.RefreshError as exc:
            retryable = bool(getattr(exc, "retryable", False))
            logger.error("event=fcm_oauth_failed %s", kv(retryable=retryable, error=repr(exc)))
            if retryable:
                raise _NoAccessToken(Outcome.TRANSIENT, "OAuthUnavailable") from exc
            raise _NoAccessToken(Outcome.CREDENTIALS_ERROR, "OAuthRefused") from exc
        except (auth_exceptions.TransportError, requests.RequestException) as exc:
            logger.warning("event=fcm_oauth_unreachable %s", kv(error=repr(exc)))
            raise _NoAccessToken(Outcome.TRANSIENT, "OAuthUnavailable") from exc

    def _post_all(
        self,
        running: _Running,
        messages: Sequence[PushMessage],
        payloads: dict[int, bytes],
        access_token: str,
    ) -> dict[int, PushResult]:
        """Every payload posted from the loop, at most max_in_flight at a time per process;
        one result per payload whatever happens to the loop or to one send."""
        sent: list[PushResult | None] = [None] * len(messages)
        expired: list[str] = []
        # Each POST is capped at connect + read; other batches of this process share the
        # slots, so this is a backstop against a wedged loop, not a deadline.
        rounds = math.ceil(len(payloads) / self._max_in_flight) + 1
        backstop = rounds * (self._connect_timeout + self._read_timeout) + 5
        failed = "ClientError"
        try:
            running.loop.run(
                self._send_all(running, messages, payloads, access_token, sent, expired),
                timeout=backstop,
            )
        except Exception as exc:
            failed = "BatchTimeout" if isinstance(exc, TimeoutError) else "ClientError"
            logger.error("event=fcm_batch_failed %s", kv(error=repr(exc)))
        done = list(sent)  # a send cancelled after the backstop can no longer change this
        if expired:
            # FCM refused the token this batch sent: the next batch fetches a new one.
            running.tokens.invalidate(access_token)
        return {
            index: done[index] or PushResult(messages[index].ref, Outcome.TRANSIENT, error=failed)
            for index in payloads
        }

    async def _send_all(
        self,
        running: _Running,
        messages: Sequence[PushMessage],
        payloads: dict[int, bytes],
        access_token: str,
        sent: list[PushResult | None],
        expired: list[str],
    ) -> None:
        async def one(index: int, payload: bytes) -> None:
            ref = messages[index].ref
            try:
                sent[index] = await self._send_one(running, ref, payload, access_token, expired)
            except Exception as exc:  # a bug here must not cost the batch its results
                logger.exception("event=fcm_send_crashed %s", kv(error=repr(exc)))
                sent[index] = PushResult(ref, Outcome.TRANSIENT, error="ClientError")

        await asyncio.gather(*(one(index, payload) for index, payload in payloads.items()))

    @staticmethod
    async def _send_one(
        running: _Running, ref: str, payload: bytes, access_token: str, expired: list[str]
    ) -> PushResult:
        try:
            answer = await running.transport.post(payload, access_token)
        except TimeoutError:  # aiohttp's connect and read timeouts are TimeoutErrors
            return PushResult(ref, Outcome.TRANSIENT, error="Timeout")
        except aiohttp.ClientConnectorError:
            return PushResult(ref, Outcome.TRANSIENT, error="ConnectionError")
        except (aiohttp.ClientError, OSError) as exc:
            return PushResult(ref, Outcome.TRANSIENT, error=type(exc).__name__)
        try:
            body = json.loads(answer.body)
        except ValueError:  # not JSON, or not UTF-8
            body = None
        result = fcm_result(ref, answer.status, body, answer.retry_after, answer.latency_ms)
        if result.outcome is Outcome.SENT:
            return result
        if "ACCESS_TOKEN_EXPIRED" in parse_fcm_error(body).reasons:
            expired.append(ref)
        elif result.outcome is Outcome.CREDENTIALS_ERROR:
            logger.error(
                "event=fcm_credentials_error %s",
                kv(status=answer.status, error=result.error),
            )
        return result
