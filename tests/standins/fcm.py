"""A local FCM HTTP v1 service with its Google OAuth2 token endpoint, in the real formats:
RS256 jwt-bearer assertions in, bearer tokens checked, v1 messages validated, v1 errors out.

Test-only: it records device tokens in memory for assertions and must never serve anything
but the test process.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt

from tests.standins._http import JSON_CONTENT_TYPE, Reply, Request, StandInHTTPServer
from tests.standins.keys import write_service_account

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # what google-auth puts in "aud"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
MAX_MESSAGE_BYTES = 4096
_SEND_PATH = re.compile(r"^/v1/projects/([^/]+)/messages:send$")
_FCM_TOKEN = re.compile(r"^[A-Za-z0-9_:-]{100,4096}$")
_TTL = re.compile(r"^\d+(\.\d{1,9})?s$")
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_DATA_KEYS_RESERVED = frozenset({"from", "notification", "message_type"})

# errorCode -> (HTTP status, google.rpc status, message) as FCM sends them.
ERRORS: dict[str, tuple[int, str, str]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for the project."),
}


def fcm_error_body(
    error_code: str, message: str | None = None, field: str | None = None
) -> tuple[int, dict[str, Any]]:
    status, rpc_status, default_message = ERRORS[error_code]
    details: list[dict[str, Any]] = [{"@type": _FCM_ERROR, "errorCode": error_code}]
    if field:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message or default_message}],
            }
        )
    return status, {
        "error": {
            "code": status,
            "message": message or default_message,
            "status": rpc_status,
            "details": details,
        }
    }


def _unauthenticated(reason: str) -> Reply:
    return Reply.json(
        401,
        {
            "error": {
                "code": 401,
                "message": "Request had invalid authentication credentials. Expected OAuth 2 "
                "access token, login cookie or other valid authentication credential.",
                "status": "UNAUTHENTICATED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": reason,
                        "domain": "googleapis.com",
                        "metadata": {"service": "fcm.googleapis.com"},
                    }
                ],
            }
        },
        {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    )


def _invalid(field: str, description: str) -> Reply:
    return Reply.json(
        400,
        {
            "error": {
                "code": 400,
                "message": description,
                "status": "INVALID_ARGUMENT",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": field, "description": description}],
                    }
                ],
            }
        },
    )


@dataclass(frozen=True)
class FCMRequest:
    token: str | None
    message: dict[str, Any]
    status: int


@dataclass
class _Rule:
    error_code: str
    message: str | None
    field: str | None
    retry_after: str | None
    remaining: int | None


class FCMStandIn(StandInHTTPServer):
    name = "fcm"

    def __init__(self, project_id: str = "pulse-standin", directory: Path | None = None) -> None:
        super().__init__()
        self.project_id = project_id
        self.directory = directory or Path(tempfile.mkdtemp(prefix="pulse-fcm-standin-"))
        self.service_account_file = self.directory / "service-account.json"
        self.client_email = f"pulse-push@{project_id}.iam.gserviceaccount.com"
        self.public_key = ""
        self.token_lifetime = 3600
        self._access_tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self._rules: dict[str, _Rule] = {}
        self._received: list[FCMRequest] = []
        self._token_requests = 0
        # Message ids as FCM shapes them ("0:<time>%<16 hex>"), unique without a uuid4 each.
        self._id_prefix = secrets.token_hex(4)
        self._id_serial = itertools.count()

    def start(self) -> FCMStandIn:
        super().start()
        # token_uri points here: google-auth posts its assertion to whatever the file says.
        self.public_key = write_service_account(
            self.service_account_file, self.project_id, self.url + "/token", self.client_email
        )
        return self

    def client_env(self) -> dict[str, str]:
        return {
            "FCM_SERVICE_ACCOUNT_FILE": str(self.service_account_file),
            "FCM_PROJECT_ID": self.project_id,
            "FCM_ENDPOINT": self.url,
        }

    # -- control -------------------------------------------------------------------

    def respond(
        self,
        token: str,
        error_code: str,
        *,
        message: str | None = None,
        field: str | None = None,
        retry_after: str | None = None,
        times: int | None = None,
    ) -> None:
        """Answer FCM's error `error_code` (a key of ERRORS) for this token, `times` times."""
        if error_code not in ERRORS:
            raise ValueError(f"unknown FCM error code {error_code}")
        with self._lock:
            self._rules[token] = _Rule(error_code, message, field, retry_after, times)

    def expire_access_tokens(self) -> None:
        """Every access token handed out so far now counts as expired."""
        with self._lock:
            self._access_tokens = dict.fromkeys(self._access_tokens, 0.0)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._rules.clear()
            self._received.clear()
            self._access_tokens.clear()
            self._token_requests = 0
        self.token_lifetime = 3600

    @property
    def received(self) -> list[FCMRequest]:
        with self._lock:
            return list(self._received)

    @property
    def token_requests(self) -> int:
        """OAuth token requests answered since reset() (successful or not)."""
        with self._lock:
            return self._token_requests

    # -- server --------------------------------------------------------------------

    def delay_for(self, request: Request) -> float:
        return 0.0 if request.path == "/token" else self.delay  # `delay` is FCM's latency

    def handle(self, request: Request) -> Reply:
        if request.method == "POST" and request.path == "/token":
            return self._token(request)
        match = _SEND_PATH.match(request.path)
        if request.method == "POST" and match:
            return self._send(request, match.group(1))
        return Reply.json(
            404, {"error": {"code": 404, "message": "Not Found", "status": "NOT_FOUND"}}
        )

    def _token(self, request: Request) -> Reply:
        with self._lock:
            self._token_requests += 1
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != JWT_BEARER or "assertion" not in form:
            return Reply.json(400, {"error": "unsupported_grant_type"})
        try:
            claims = jwt.decode(
                form["assertion"],
                self.public_key,
                algorithms=["RS256"],
                audience=[GOOGLE_TOKEN_URI, self.url + "/token"],
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.PyJWTError as exc:
            return Reply.json(400, {"error": "invalid_grant", "error_description": str(exc)})
        if claims["iss"] != self.client_email or FCM_SCOPE not in str(claims.get("scope", "")):
            return Reply.json(
                400, {"error": "invalid_scope", "error_description": "bad issuer or scope"}
            )
        token = "ya29.standin-" + secrets.token_urlsafe(24)
        with self._lock:
            self._access_tokens[token] = time.time() + self.token_lifetime
        return Reply.json(
            200,
            {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"},
        )

    def _send(self, request: Request, project: str) -> Reply:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            expiry = self._access_tokens.get(token) if scheme.lower() == "bearer" else None
        if expiry is None:
            return _unauthenticated("ACCESS_TOKEN_TYPE_UNSUPPORTED")
        if expiry < time.time():
            return _unauthenticated("ACCESS_TOKEN_EXPIRED")
        if project != self.project_id:
            return Reply.json(
                403,
                {
                    "error": {
                        "code": 403,
                        "message": f"Permission denied on resource project {project}.",
                        "status": "PERMISSION_DENIED",
                    }
                },
            )
        try:
            body = json.loads(request.body)
        except ValueError:
            return _invalid("", "Invalid JSON payload received.")
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict):
            return _invalid("message", "Invalid JSON payload received. Missing message.")
        reply = self._validate(message, len(request.body))
        device = message.get("token")
        if reply is None and self._rules:
            reply = self._programmed(device)
        if reply is None:
            name = (
                f"projects/{project}/messages/0:{time.time_ns() // 1000}"
                f"%{self._id_prefix}{next(self._id_serial):08x}"
            )
            # The name is plain ASCII (the project matched ours): no json.dumps needed.
            body = b'{"name": "%s"}' % name.encode()
            reply = Reply(200, body, {"Content-Type": JSON_CONTENT_TYPE})
        if self.record:
            with self._lock:
                self._received.append(FCMRequest(device, message, reply.status))
        return reply

    def _validate(self, message: dict[str, Any], size: int) -> Reply | None:
        targets = [k for k in ("token", "topic", "condition") if message.get(k)]
        if len(targets) != 1:
            return _invalid("message", "Exactly one of token, topic or condition must be set.")
        data = message.get("data", {})
        if not isinstance(data, dict):
            return _invalid("message.data", "Invalid value at 'message.data'")
        for index, (key, value) in enumerate(data.items()):
            if not isinstance(value, str):
                return _invalid(
                    f"message.data[{index}].value",
                    f"Invalid value at 'message.data[{index}].value' (TYPE_STRING), {value}",
                )
            if key in _DATA_KEYS_RESERVED or key.startswith(("google", "gcm")):
                return _invalid("message.data", f"Invalid data payload key: {key}")
        android = message.get("android", {})
        if not isinstance(android, dict):
            return _invalid("message.android", "Invalid value at 'message.android'")
        if str(android.get("priority", "normal")).lower() not in ("normal", "high"):
            return _invalid(
                "message.android.priority", "Invalid value at 'message.android.priority'"
            )
        if "ttl" in android and not _TTL.match(str(android["ttl"])):
            return _invalid("message.android.ttl", "Invalid value at 'message.android.ttl'")
        if size > MAX_MESSAGE_BYTES:
            status, body = fcm_error_body("INVALID_ARGUMENT", "Android message is too big")
            return Reply.json(status, body)
        token = message.get("token")
        if token is not None and not _FCM_TOKEN.match(str(token)):
            status, body = fcm_error_body(
                "INVALID_ARGUMENT",
                "The registration token is not a valid FCM registration token",
                "message.token",
            )
            return Reply.json(status, body)
        return None

    def _programmed(self, token: str | None) -> Reply | None:
        with self._lock:
            rule = self._rules.get(token or "")
            if rule is None or rule.remaining == 0:
                return None
            if rule.remaining is not None:
                rule.remaining -= 1
        status, body = fcm_error_body(rule.error_code, rule.message, rule.field)
        headers = {"Retry-After": rule.retry_after} if rule.retry_after else None
        return Reply.json(status, body, headers)
