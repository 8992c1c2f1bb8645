"""A local Expo push service: /--/api/v2/push/send and /push/getReceipts with Expo's
limits (100 messages, 1000 receipt ids), gzip bodies, access-token checks and error shapes.

Test-only: it records device tokens in memory for assertions and must never serve anything
but the test process.
"""

from __future__ import annotations

import gzip
import json
import secrets
from dataclasses import dataclass
from typing import Any

from tests.standins._http import JSON_CONTENT_TYPE, Reply, Request, StandInHTTPServer

SEND_PATH = "/--/api/v2/push/send"
RECEIPTS_PATH = "/--/api/v2/push/getReceipts"
MAX_MESSAGES = 100
MAX_RECEIPT_IDS = 1000
_DEFAULT_EXPERIENCE = "@pulse/dating"
# Tickets kept for getReceipts, oldest forgotten first (Expo keeps receipts for a day); far
# above any test, it bounds a long benchmark's memory.
MAX_TICKETS = 200_000

_ERROR_MESSAGES = {
    "DeviceNotRegistered": "{token} is not a registered push notification recipient",
    "MessageTooBig": "Message too big",
    "MessageRateExceeded": "Message rate exceeded for {token}",
    "InvalidCredentials": "Unable to retrieve the FCM server key for the recipient's app",
    "MismatchSenderId": "The FCM server key does not match the sender id",
}


def _errors(status: int, code: str, message: str, **extra: Any) -> Reply:
    return Reply.json(status, {"errors": [{"code": code, "message": message, **extra}]})


def _error_item(code: str, token: str) -> dict[str, Any]:
    text = _ERROR_MESSAGES.get(code, "Error: {token}").format(token=json.dumps(token))
    details: dict[str, Any] = {"error": code}
    if code == "DeviceNotRegistered":
        details["expoPushToken"] = token
    return {"status": "error", "message": text, "details": details}


@dataclass(frozen=True)
class ExpoRequest:
    path: str
    headers: dict[str, str]
    payload: Any  # parsed JSON (after gunzip)
    status: int


@dataclass
class _Failure:
    status: int
    retry_after: str | None
    remaining: int | None


class ExpoStandIn(StandInHTTPServer):
    name = "expo"

    def __init__(self, access_token: str | None = None) -> None:
        super().__init__()
        self.access_token = access_token  # when set, requests must carry it (enhanced security)
        self._initial_access_token = access_token
        self._ticket_errors: dict[str, str] = {}
        self._receipt_errors: dict[str, str] = {}
        self._receipts_pending: set[str] = set()
        self._experiences: dict[str, str] = {}
        self._failure: _Failure | None = None
        self._tickets: dict[str, str] = {}  # ticket id -> token, oldest first
        self._received: list[ExpoRequest] = []
        # Ticket ids in UUID v4 shape, unique per server: a random stem and a serial number,
        # because a uuid4() per message cost more than the rest of the request.
        stem = secrets.token_hex(9)
        self._ticket_stem = f"{stem[:8]}-{stem[8:12]}-4{stem[12:15]}-a{stem[15:]}-"
        self._next_ticket = 0
        self._first_ticket = 0  # the oldest serial number that may still be in _tickets

    def client_env(self) -> dict[str, str]:
        env = {"EXPO_PUSH_HOST": self.url}
        if self.access_token:
            env["EXPO_PUSH_ACCESS_TOKEN"] = self.access_token
        return env

    # -- control -------------------------------------------------------------------

    def ticket_error(self, token: str, code: str) -> None:
        """Answer an error ticket with details.error `code` for this token."""
        with self._lock:
            self._ticket_errors[token] = code

    def receipt_error(self, token: str, code: str) -> None:
        """Accept the message, then give it an error receipt with details.error `code`."""
        with self._lock:
            self._receipt_errors[token] = code

    def hold_receipts(self, token: str) -> None:
        """Receipts for this token's tickets are not ready yet (left out of the answer)."""
        with self._lock:
            self._receipts_pending.add(token)

    def experience(self, token: str, experience_id: str) -> None:
        """Say which Expo project a token belongs to (default: one common project)."""
        with self._lock:
            self._experiences[token] = experience_id

    def fail_requests(
        self, status: int, *, times: int | None = None, retry_after: str | None = None
    ) -> None:
        """Fail whole requests with `status` (429 / 5xx), `times` times or always."""
        with self._lock:
            self._failure = _Failure(status, retry_after, times)

    def reset(self) -> None:
        super().reset()
        self.access_token = self._initial_access_token
        with self._lock:
            self._ticket_errors.clear()
            self._receipt_errors.clear()
            self._receipts_pending.clear()
            self._experiences.clear()
            self._tickets.clear()
            self._received.clear()
            self._failure = None

    @property
    def received(self) -> list[ExpoRequest]:
        with self._lock:
            return list(self._received)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message of every accepted /push/send request, in arrival order."""
        out: list[dict[str, Any]] = []
        for request in self.received:
            if request.path == SEND_PATH and request.status == 200:
                payload = request.payload
                out.extend(payload if isinstance(payload, list) else [payload])
        return out

    # -- server --------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        payload, reply = self._parse(request)
        if reply is None:
            reply = self._answer(request, payload)
        if self.record:
            with self._lock:
                self._received.append(
                    ExpoRequest(request.path, request.headers, payload, reply.status)
                )
        if "gzip" in request.headers.get("accept-encoding", "") and len(reply.body) > 512:
            reply.body = gzip.compress(reply.body)
            reply.headers["Content-Encoding"] = "gzip"
        return reply

    def _parse(self, request: Request) -> tuple[Any, Reply | None]:
        raw = request.body
        if request.headers.get("content-encoding") == "gzip":
            try:
                raw = gzip.decompress(raw)
            except OSError:
                return None, _errors(400, "VALIDATION_ERROR", "The request body is not gzip")
        try:
            return json.loads(raw), None
        except ValueError:
            return None, _errors(400, "VALIDATION_ERROR", "The request body is not JSON")

    def _answer(self, request: Request, payload: Any) -> Reply:
        if request.method != "POST" or request.path not in (SEND_PATH, RECEIPTS_PATH):
            return _errors(404, "NOT_FOUND", "Not found")
        if self.access_token and request.headers.get("authorization") != (
            f"Bearer {self.access_token}"
        ):
            return _errors(
                401,
                "UNAUTHORIZED",
                "The bearer token is invalid; enhanced push security requires a valid token",
            )
        with self._lock:
            failure = self._failure
            if failure is not None and failure.remaining != 0:
                if failure.remaining is not None:
                    failure.remaining -= 1
                code = "TOO_MANY_REQUESTS" if failure.status == 429 else "INTERNAL_SERVER_ERROR"
                reply = _errors(failure.status, code, "Please try again later")
                if failure.retry_after:
                    reply.headers["Retry-After"] = failure.retry_after
                return reply
        if request.path == SEND_PATH:
            return self._send(payload)
        return self._receipts(payload)

    def _send(self, payload: Any) -> Reply:
        messages = payload if isinstance(payload, list) else [payload]
        tokens: list[str] = []
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or "to" not in message:
                return _errors(400, "VALIDATION_ERROR", f'"[{index}].to" is required')
            if "data" in message and not isinstance(message["data"], dict):
                return _errors(400, "VALIDATION_ERROR", f'"[{index}].data" must be of type object')
            to = message["to"]
            if isinstance(to, list):
                tokens.extend(to)
            else:
                tokens.append(to)
        if len(tokens) > MAX_MESSAGES:
            return _errors(
                400,
                "PUSH_TOO_MANY_NOTIFICATIONS",
                f"You are trying to send more than {MAX_MESSAGES} push notifications in one "
                "request",
            )
        with self._lock:
            if self._experiences:
                projects: dict[str, list[str]] = {}
                for token in tokens:
                    project = self._experiences.get(token, _DEFAULT_EXPERIENCE)
                    projects.setdefault(project, []).append(token)
                if len(projects) > 1:
                    return _errors(
                        400,
                        "PUSH_TOO_MANY_EXPERIENCE_IDS",
                        "All push notification messages in the same request must be for the "
                        "same project; separate your push notifications by project.",
                        details=projects,
                    )
            tickets: list[str] = []  # each ticket as JSON text
            for token in tokens:
                code = self._ticket_errors.get(token)
                if code:
                    tickets.append(json.dumps(_error_item(code, token)))
                    continue
                ticket_id = self._ticket_id(self._next_ticket)
                self._next_ticket += 1
                self._tickets[ticket_id] = token
                # The id is hex and dashes: no escaping, so no json.dumps per ticket.
                tickets.append(f'{{"status": "ok", "id": "{ticket_id}"}}')
            while len(self._tickets) > MAX_TICKETS:  # forget the oldest, by serial number
                self._tickets.pop(self._ticket_id(self._first_ticket), None)
                self._first_ticket += 1
        body = f'{{"data": [{", ".join(tickets)}]}}'.encode()
        return Reply(200, body, {"Content-Type": JSON_CONTENT_TYPE})

    def _ticket_id(self, serial: int) -> str:
        return f"{self._ticket_stem}{serial:012x}"

    def _receipts(self, payload: Any) -> Reply:
        ids = payload.get("ids") if isinstance(payload, dict) else None
        if not isinstance(ids, list):
            return _errors(400, "VALIDATION_ERROR", '"ids" is required')
        if len(ids) > MAX_RECEIPT_IDS:
            return _errors(
                400,
                "PUSH_TOO_MANY_RECEIPTS",
                f"You are trying to get more than {MAX_RECEIPT_IDS} push receipts in one request",
            )
        receipts: dict[str, Any] = {}
        with self._lock:
            for ticket_id in ids:
                token = self._tickets.get(ticket_id)
                if token is None or token in self._receipts_pending:
                    continue
                code = self._receipt_errors.get(token)
                receipts[ticket_id] = _error_item(code, token) if code else {"status": "ok"}
        return Reply.json(200, {"data": receipts})
