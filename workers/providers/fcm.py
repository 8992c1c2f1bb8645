"""Firebase Cloud Messaging HTTP v1 (Android, web), through pyfcm, one POST per message.

Throughput comes from a thread pool sharing one connection pool and one OAuth token; each
message gets exactly one attempt here (retries belong to the job). Nothing in this
module may log a device token or a message body.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from google.auth import exceptions as auth_exceptions
from google.oauth2 import service_account

from core.catalog import Provider
from core.config import Settings
from workers.providers.base import (
    Outcome,
    PushMessage,
    PushResult,
    kv,
    log_batch,
    parse_retry_after,
    seconds_until,
)
from workers.providers.fcm_client import FCM_SCOPE, AccessTokenSource, SingleAttemptFCM

# Messages in flight per worker process: FCM sends one message per HTTP/1.1 request.
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


def android_config(message: PushMessage) -> dict[str, Any]:
    config: dict[str, Any] = {"priority": "high" if message.is_urgent else "normal"}
    if message.collapse_key:
        config["collapse_key"] = message.collapse_key
    if message.expires_at:
        config["ttl"] = f"{seconds_until(message.expires_at)}s"
    notification: dict[str, Any] = {}
    if message.thread_id:
        notification["tag"] = message.thread_id  # a newer one replaces the shown one
    if message.sound:
        notification["sound"] = message.sound
    if message.badge is not None:
        notification["notification_count"] = message.badge
    if notification:
        config["notification"] = notification
    return config


@dataclass
class _Running:
    """Per-process machinery, rebuilt after a fork (threads and sockets don't survive it)."""

    pid: int
    client: SingleAttemptFCM
    tokens: AccessTokenSource
    executor: ThreadPoolExecutor


class FCMProvider:
    name = Provider.FCM

    def __init__(
        self,
        settings: Settings,
        *,
        max_workers: int = FCM_CONCURRENCY,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
    ) -> None:
        if not settings.fcm_service_account_file:
            raise ValueError("FCM needs FCM_SERVICE_ACCOUNT_FILE")
        # google-auth reads token_uri from the file: that is where the OAuth token comes from.
        self._credentials = service_account.Credentials.from_service_account_file(
            settings.fcm_service_account_file, scopes=[FCM_SCOPE]
        )
        # pyfcm prefers the service account's project; FCM_PROJECT_ID fills in when absent.
        self._project_id = self._credentials.project_id or settings.fcm_project_id
        if not self._project_id:
            raise ValueError("FCM needs a project id: in the service account or FCM_PROJECT_ID")
        self._endpoint = settings.fcm_endpoint
        self._max_workers = max_workers
        self._timeout = (connect_timeout, read_timeout)
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
            tokens = AccessTokenSource(self._credentials)
            client = SingleAttemptFCM(
                self._credentials, self._project_id, self._endpoint, tokens, self._max_workers
            )
            executor = ThreadPoolExecutor(self._max_workers, thread_name_prefix="fcm-send")
            self._running = _Running(os.getpid(), client, tokens, executor)
            logger.info(
                "event=fcm_started %s", kv(endpoint=self._endpoint, project=self._project_id)
            )
            return self._running

    def close(self) -> None:
        with self._lock:
            running, self._running = self._running, None
        if running is not None and running.pid == os.getpid():
            running.executor.shutdown(wait=True)
            running.client.close()

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        started = time.monotonic()
        running = self._ensure_running()
        results: list[PushResult | None] = [None] * len(messages)
        payloads: dict[int, bytes] = {}
        for index, message in enumerate(messages):
            try:
                payload = running.client.parse_payload(
                    fcm_token=message.token,
                    notification_title=message.title,
                    notification_body=message.body,
                    data_payload=data_as_strings(message.data),
                    android_config=android_config(message),
                )
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
            failure = self._token_failure(running)
            if failure is not None:
                for index in payloads:
                    results[index] = PushResult(messages[index].ref, failure[0], error=failure[1])
            else:
                futures = {
                    index: running.executor.submit(self._send_one, running, messages[index], body)
                    for index, body in payloads.items()
                }
                for index, future in futures.items():
                    try:
                        results[index] = future.result()
                    except Exception as exc:  # a bug here must not cost the batch its results
                        logger.exception("event=fcm_send_crashed %s", kv(error=repr(exc)))
                        results[index] = PushResult(
                            messages[index].ref, Outcome.TRANSIENT, error="ClientError"
                        )
        final = [r for r in results if r is not None]
        log_batch(logger, self.name, final, (time.monotonic() - started) * 1000)
        return final

    def _token_failure(self, running: _Running) -> tuple[Outcome, str] | None:
        """Fetch (or reuse) the OAuth token once per batch, before the threads need it."""
        try:
            running.tokens.get()
        except auth_exceptions.RefreshError as exc:
            retryable = bool(getattr(exc, "retryable", False))
            logger.error("event=fcm_oauth_failed %s", kv(retryable=retryable, error=repr(exc)))
            if retryable:
                return Outcome.TRANSIENT, "OAuthUnavailable"
            return Outcome.CREDENTIALS_ERROR, "OAuthRefused"
        except (auth_exceptions.TransportError, requests.RequestException) as exc:
            logger.warning("event=fcm_oauth_unreachable %s", kv(error=repr(exc)))
            return Outcome.TRANSIENT, "OAuthUnavailable"
        return None

    def _send_one(self, running: _Running, message: PushMessage, payload: bytes) -> PushResult:
        started = time.monotonic()
        try:
            response = running.client.send_request(payload, timeout=self._timeout)
        except requests.Timeout:
            return PushResult(message.ref, Outcome.TRANSIENT, error="Timeout")
        except (requests.RequestException, auth_exceptions.GoogleAuthError) as exc:
            return PushResult(message.ref, Outcome.TRANSIENT, error=type(exc).__name__)
        latency_ms = (time.monotonic() - started) * 1000
        try:
            body = response.json()
        except ValueError:
            body = None
        result = fcm_result(
            message.ref,
            response.status_code,
            body,
            response.headers.get("Retry-After"),
            latency_ms,
        )
        if "ACCESS_TOKEN_EXPIRED" in parse_fcm_error(body).reasons:
            stale = response.request.headers.get("Authorization", "").removeprefix("Bearer ")
            running.tokens.invalidate(stale)
        elif result.outcome is Outcome.CREDENTIALS_ERROR:
            logger.error(
                "event=fcm_credentials_error %s",
                kv(status=response.status_code, error=result.error),
            )
        return result
