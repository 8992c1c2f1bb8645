"""Expo's push service: tickets on send, receipts later, over plain HTTPS with requests.

Sends go in chunks of 100 over a few threads, one attempt per chunk (retries belong to
the job); nothing here may log a device token or a message body (Expo's error messages
quote the token, so only their error codes are kept).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from core.catalog import Provider
from core.config import Settings
from providers.base import (
    Outcome,
    PushMessage,
    PushResult,
    ReceiptResult,
    kv,
    log_batch,
    parse_retry_after,
)

logger = logging.getLogger(__name__)

SEND_PATH = "/--/api/v2/push/send"
RECEIPTS_PATH = "/--/api/v2/push/getReceipts"
MAX_MESSAGES_PER_REQUEST = 100
MAX_RECEIPTS_PER_REQUEST = 1000
GZIP_ABOVE_BYTES = 1024  # as Expo's own SDK does
# The forms Expo's SDK accepts (expo-server-sdk-node `isExpoPushToken`).
_EXPO_TOKEN = re.compile(
    r"^(Expo(nent)?PushToken\[.+\]"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)

_ERROR_OUTCOMES = {
    "DeviceNotRegistered": Outcome.TOKEN_INVALID,
    "MessageTooBig": Outcome.PAYLOAD_ERROR,
    "MessageRateExceeded": Outcome.TRANSIENT,
    "InvalidCredentials": Outcome.CREDENTIALS_ERROR,
    "MismatchSenderId": Outcome.CREDENTIALS_ERROR,
    "InvalidProviderToken": Outcome.CREDENTIALS_ERROR,
}


def classify_expo_error(code: str | None) -> Outcome:
    """A ticket's or a receipt's details.error. An unknown code is retried (bounded by the
    job) rather than failed or blamed on the token: Expo adds codes from time to time."""
    return _ERROR_OUTCOMES.get(code or "", Outcome.TRANSIENT)


def classify_expo_request(http_status: int, codes: Sequence[str] = ()) -> Outcome:
    """A failure of a whole request (every message in the chunk shares it)."""
    if http_status in (401, 403) or "UNAUTHORIZED" in codes:
        return Outcome.CREDENTIALS_ERROR
    if http_status == 429 or "TOO_MANY_REQUESTS" in codes or http_status >= 500:
        return Outcome.TRANSIENT
    if 400 <= http_status < 500 or codes:
        return Outcome.PAYLOAD_ERROR  # e.g. PUSH_TOO_MANY_NOTIFICATIONS, VALIDATION_ERROR
    return Outcome.TRANSIENT  # a 200 we cannot read, a 3xx: try again later


def ticket_result(ref: str, ticket: Any, latency_ms: float | None = None) -> PushResult:
    """A PushResult from one ticket of a /push/send answer (pure, table-tested)."""
    if isinstance(ticket, Mapping) and ticket.get("status") == "ok":
        return PushResult(
            ref, Outcome.SENT, provider_message_id=ticket.get("id"), latency_ms=latency_ms
        )
    code = _error_code(ticket)
    return PushResult(
        ref, classify_expo_error(code), error=code or "UnknownTicketError", latency_ms=latency_ms
    )


def receipt_result(ticket_id: str, receipt: Any) -> ReceiptResult:
    if isinstance(receipt, Mapping) and receipt.get("status") == "ok":
        return ReceiptResult(ticket_id, Outcome.SENT)
    code = _error_code(receipt)
    return ReceiptResult(ticket_id, classify_expo_error(code), error=code or "UnknownReceiptError")


def _error_code(item: Any) -> str | None:
    details = item.get("details") if isinstance(item, Mapping) else None
    code = details.get("error") if isinstance(details, Mapping) else None
    return str(code) if code else None


def build_message(message: PushMessage) -> dict[str, Any]:
    """Expo's message JSON. Raises ValueError for data that is not a JSON object.

    `channelId` is the Android channel (the type's, or `quiet`); `interruptionLevel` the
    iOS one. A push delivered quietly has no `sound` (Expo: omitted means silent on iOS;
    Android follows the channel) and goes at normal priority."""
    if not isinstance(message.data, Mapping):
        raise ValueError("Expo data must be a JSON object")
    data = json.loads(json.dumps(dict(message.data)))  # TypeError/ValueError if not JSON
    body: dict[str, Any] = {
        "to": message.token,
        "title": message.title,
        "body": message.body,
        "data": data,
        # "normal" maps to apns-priority 5 on iOS; Expo's "default" would mean 10 there.
        "priority": "high" if message.is_urgent else "normal",
    }
    if message.sound and not message.quiet:
        body["sound"] = message.sound
    if message.channel:
        body["channelId"] = message.channel
    if message.interruption_level:
        body["interruptionLevel"] = message.interruption_level
    if message.badge is not None:
        body["badge"] = message.badge
    if message.expires_at:
        body["expiration"] = int(message.expires_at.timestamp())
    return body


@dataclass
class _Running:
    pid: int
    executor: ThreadPoolExecutor
    adapter: HTTPAdapter
    sessions: threading.local


class ExpoProvider:
    name = Provider.EXPO

    def __init__(
        self,
        settings: Settings,
        *,
        concurrency: int = 4,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
    ) -> None:
        self._host = settings.providers.expo_host.rstrip("/")
        self._access_token = settings.providers.expo_access_token
        self._concurrency = concurrency
        self._timeout = (connect_timeout, read_timeout)
        self._lock = threading.Lock()
        self._running: _Running | None = None

    # -- lifecycle -----------------------------------------------------------------

    def _ensure_running(self) -> _Running:
        with self._lock:
            running = self._running
            if running is None or running.pid != os.getpid():
                # After a fork the pooled sockets belong to the parent: start afresh.
                running = _Running(
                    os.getpid(),
                    ThreadPoolExecutor(self._concurrency, thread_name_prefix="expo-send"),
                    HTTPAdapter(pool_maxsize=self._concurrency, max_retries=0),
                    threading.local(),
                )
                self._running = running
            return running

    def _session(self, running: _Running) -> requests.Session:
        # One Session per thread (requests does not promise thread safety), one shared pool.
        session = getattr(running.sessions, "session", None)
        if session is None:
            session = requests.Session()
            session.mount("https://", running.adapter)
            session.mount("http://", running.adapter)
            running.sessions.session = session
        return session

    def close(self) -> None:
        with self._lock:
            running, self._running = self._running, None
        if running is not None and running.pid == os.getpid():
            running.executor.shutdown(wait=True)
            running.adapter.close()

    def _post(self, running: _Running, path: str, payload: Any) -> requests.Response:
        raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
            "Content-Type": "application/json",
        }
        if len(raw) > GZIP_ABOVE_BYTES:
            raw = gzip.compress(raw)
            headers["Content-Encoding"] = "gzip"
        if self._access_token:
            headers["Authorization"] = f"Bearer {self._access_token}"
        return self._session(running).post(
            self._host + path, data=raw, headers=headers, timeout=self._timeout
        )

    # -- sending -------------------------------------------------------------------

    def send(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        started = time.monotonic()
        results: list[PushResult | None] = [None] * len(messages)
        ready: list[tuple[int, dict[str, Any]]] = []
        for index, message in enumerate(messages):
            if not _EXPO_TOKEN.match(message.token):
                # Caught here so that one malformed token cannot fail a whole chunk of 100.
                results[index] = PushResult(
                    message.ref, Outcome.TOKEN_INVALID, error="InvalidExpoPushToken"
                )
                continue
            try:
                ready.append((index, build_message(message)))
            except (ValueError, TypeError):
                results[index] = PushResult(message.ref, Outcome.PAYLOAD_ERROR, error="BadData")
        if ready:
            running = self._ensure_running()
            chunks = [
                ready[i : i + MAX_MESSAGES_PER_REQUEST]
                for i in range(0, len(ready), MAX_MESSAGES_PER_REQUEST)
            ]
            refs = {index: messages[index].ref for index, _ in ready}
            for chunk, chunk_results in zip(
                chunks,
                running.executor.map(lambda c: self._send_chunk_safely(running, c, refs), chunks),
                strict=True,
            ):
                for (index, _), result in zip(chunk, chunk_results, strict=True):
                    results[index] = result
        final = [r for r in results if r is not None]
        log_batch(logger, self.name, final, (time.monotonic() - started) * 1000)
        return final

    def _send_chunk_safely(
        self, running: _Running, chunk: list[tuple[int, dict[str, Any]]], refs: Mapping[int, str]
    ) -> list[PushResult]:
        try:
            return self._send_chunk(running, chunk, refs)
        except Exception as exc:  # a bug here must not cost the batch its results
            logger.exception("event=expo_send_crashed %s", kv(error=repr(exc)))
            return [PushResult(refs[i], Outcome.TRANSIENT, error="ClientError") for i, _ in chunk]

    def _send_chunk(
        self,
        running: _Running,
        chunk: list[tuple[int, dict[str, Any]]],
        refs: Mapping[int, str],
        *,
        may_split: bool = True,
    ) -> list[PushResult]:
        started = time.monotonic()

        def whole(
            outcome: Outcome, error: str, retry_after: float | None = None
        ) -> list[PushResult]:
            return [
                PushResult(refs[i], outcome, error=error, retry_after=retry_after) for i, _ in chunk
            ]

        try:
            response = self._post(running, SEND_PATH, [body for _, body in chunk])
        except requests.Timeout:
            return whole(Outcome.TRANSIENT, "Timeout")
        except requests.RequestException as exc:
            return whole(Outcome.TRANSIENT, type(exc).__name__)
        latency_ms = (time.monotonic() - started) * 1000
        try:
            answer = response.json()
        except ValueError:
            answer = None
        tickets = answer.get("data") if isinstance(answer, Mapping) else None
        errors = answer.get("errors") if isinstance(answer, Mapping) else None
        if response.status_code == 200 and not errors and isinstance(tickets, list):
            if len(tickets) == len(chunk):
                return [
                    ticket_result(refs[i], ticket, latency_ms)
                    for (i, _), ticket in zip(chunk, tickets, strict=True)
                ]
            return whole(Outcome.TRANSIENT, "TicketCountMismatch")
        errors = [e for e in errors or [] if isinstance(e, Mapping)]
        codes = [str(e.get("code")) for e in errors if e.get("code")]
        if may_split and "PUSH_TOO_MANY_EXPERIENCE_IDS" in codes:
            return self._split_by_experience(running, chunk, refs, errors)
        outcome = classify_expo_request(response.status_code, codes)
        logger.warning(
            "event=expo_request_failed %s",
            kv(status=response.status_code, codes=",".join(codes), messages=len(chunk)),
        )
        retry_after = None
        if outcome is Outcome.TRANSIENT:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return whole(outcome, codes[0] if codes else f"HTTP_{response.status_code}", retry_after)

    def _split_by_experience(
        self,
        running: _Running,
        chunk: list[tuple[int, dict[str, Any]]],
        refs: Mapping[int, str],
        errors: Sequence[Mapping[str, Any]],
    ) -> list[PushResult]:
        """Tokens of several Expo projects in one request: Expo names which token belongs
        to which project; send each project's messages on their own, once."""
        groups: dict[str, str] = {}
        for error in errors:
            details = error.get("details")
            if error.get("code") == "PUSH_TOO_MANY_EXPERIENCE_IDS" and isinstance(details, Mapping):
                for experience, tokens in details.items():
                    for token in tokens if isinstance(tokens, list) else []:
                        groups[str(token)] = str(experience)
        by_group: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for item in chunk:
            by_group.setdefault(groups.get(item[1]["to"], ""), []).append(item)
        logger.warning("event=expo_mixed_projects %s", kv(projects=len(by_group)))
        results: dict[int, PushResult] = {}
        for items in by_group.values():
            for (index, _), result in zip(
                items, self._send_chunk(running, items, refs, may_split=False), strict=True
            ):
                results[index] = result
        return [results[index] for index, _ in chunk]

    # -- receipts ------------------------------------------------------------------

    def check_receipts(self, ticket_ids: Sequence[str]) -> dict[str, ReceiptResult]:
        """Receipts that are ready, by ticket id. An id missing from the answer is not ready
        yet (or a request failed, logged): ask again later."""
        running = self._ensure_running()
        found: dict[str, ReceiptResult] = {}
        ids = list(dict.fromkeys(ticket_ids))
        for start in range(0, len(ids), MAX_RECEIPTS_PER_REQUEST):
            part = ids[start : start + MAX_RECEIPTS_PER_REQUEST]
            try:
                response = self._post(running, RECEIPTS_PATH, {"ids": part})
                answer = response.json()
            except (requests.RequestException, ValueError) as exc:
                logger.warning("event=expo_receipts_failed %s", kv(error=type(exc).__name__))
                continue
            receipts = answer.get("data") if isinstance(answer, Mapping) else None
            if response.status_code != 200 or not isinstance(receipts, Mapping):
                logger.warning(
                    "event=expo_receipts_failed %s", kv(status=response.status_code, ids=len(part))
                )
                continue
            for ticket_id in part:
                if ticket_id in receipts:
                    found[ticket_id] = receipt_result(ticket_id, receipts[ticket_id])
        return found
