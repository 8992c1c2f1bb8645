"""Pulse's API errors and the one path that turns any error into the JSON envelope.

Raise an ApiError subclass anywhere below a view; never build an error response by
hand. A 500 never carries a trace or an exception message to the client.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.exceptions
import sqlalchemy.exc
from flask import Flask, Response, g, has_request_context, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

UNKNOWN_FIELD_MESSAGE = "Unknown field."

# A dependency that is down answers 503 with this Retry-After: a restart takes seconds.
RETRY_AFTER_SECONDS = 5
# details.dependency -> the name a message gives it.
DEPENDENCY_NAMES = {"postgresql": "PostgreSQL", "redis": "Redis"}


class ApiError(Exception):
    status = 400
    code = "bad_request"
    message = "The request is not valid."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details or {}
        self.headers = headers or {}


class ValidationFailed(ApiError):
    status = 422
    code = "validation_error"
    message = "Some fields are not valid."


class UnknownField(ApiError):
    status = 400
    code = "unknown_field"
    message = "The request has fields this endpoint does not accept."


class MalformedJson(ApiError):
    status = 400
    code = "malformed_json"
    message = "The request body is not valid JSON."


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"
    message = "Send the request body as application/json."


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"
    message = "A valid bearer token is required."

    def __init__(self, message: str | None = None, *, code: str | None = None, **kwargs: Any):
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="pulse"'})
        super().__init__(message, **kwargs)
        if code:
            self.code = code


class Forbidden(ApiError):
    status = 403
    code = "forbidden"
    message = "Your role does not allow this."


class TooDeeplyNested(ApiError):
    status = 400
    code = "too_deeply_nested"
    message = "The JSON body nests arrays or objects too deeply."


class NotFound(ApiError):
    status = 404
    code = "not_found"
    message = "No such resource."


class Conflict(ApiError):
    status = 409
    code = "conflict"
    message = "The request conflicts with the current state."


class Unavailable(ApiError):
    """A dependency (PostgreSQL or Redis) cannot be reached: a moment's outage, not a bug."""

    status = 503
    code = "unavailable"

    def __init__(self, dependency: str):
        super().__init__(
            f"{DEPENDENCY_NAMES[dependency]} is unavailable for a moment: "
            f"retry in {RETRY_AFTER_SECONDS} seconds.",
            details={"dependency": dependency},
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


def unavailable_dependency(error: BaseException) -> str | None:
    """Which dependency, "postgresql" or "redis", `error` (or an error it was raised from)
    says cannot be reached (refused, cut, timed out, shutting down); None otherwise,
    so that a bug stays a bug. Only explicit causes (`raise ... from`) are followed: an
    error raised while handling an outage is not itself an outage."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlalchemy.exc.DBAPIError):
            if current.connection_invalidated or isinstance(
                current, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError
            ):
                return "postgresql"
        elif isinstance(current, sqlalchemy.exc.TimeoutError):  # no pooled connection freed
            return "postgresql"
        elif isinstance(current, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            return "redis"
        current = current.__cause__
    return None


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": message, "details": details or {}}}


def _response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def api_error_response(error: ApiError) -> Response:
    if "Retry-After" in error.headers and has_request_context():
        # Flask-Limiter sets its own on limited routes, after this: the answer's own wins
        # (api.requests.drop_retry_after_unless_limited puts it back).
        g.retry_after = error.headers["Retry-After"]
    return _response(
        error.status, error_body(error.code, error.message, error.details), error.headers
    )


def _from_webargs(status: int, messages: dict[str, Any]) -> ApiError:
    """webargs reports parse errors as {location: {field: [messages]}}; name the fields."""
    if status == 400 and messages == {"json": ["Invalid JSON body."]}:
        return MalformedJson()
    fields: dict[str, Any] = {}
    for location_errors in messages.values():
        if isinstance(location_errors, dict):
            fields.update(location_errors)
        else:
            fields["_body"] = location_errors
    unknown = sorted(name for name, errs in fields.items() if errs == [UNKNOWN_FIELD_MESSAGE])
    if unknown:
        return UnknownField(
            f"Unknown field(s): {', '.join(unknown)}.",
            details={"fields": {n: fields[n] for n in unknown}},
        )
    named = ", ".join(sorted(fields)) or "the body"
    return ValidationFailed(f"Invalid value for {named}.", details={"fields": fields})


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def http_exception_response(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    if "messages" in data and status in (400, 422):
        return api_error_response(_from_webargs(status, data["messages"]))
    headers = dict(data.get("headers") or {})
    if status >= 500:
        return _response(status, error_body("server_error", "Something went wrong on our side."))
    details: dict[str, Any] = {}
    if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
        details["allowed_methods"] = sorted(error.valid_methods)  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(details["allowed_methods"])
    if status == 429:
        details["limit"] = str(getattr(error, "description", ""))
        message = "Too many requests: slow down and retry after the Retry-After delay."
    else:
        message = data.get("message") or error.description or error.name
    code = _HTTP_CODES.get(status, error.name.lower().replace(" ", "_"))
    return _response(status, error_body(code, message, details), headers)


def unexpected_error_response(error: Exception) -> Response:
    """A dependency that is down is a 503 `unavailable` naming it; anything else is a bug,
    a 500 logged with its trace."""
    dependency = unavailable_dependency(error)
    if dependency is not None:
        log.warning(
            "event=dependency_unavailable dependency=%s error_type=%s",
            dependency,
            type(error).__name__,
        )
        return api_error_response(Unavailable(dependency))
    log.exception("event=unhandled_error error_type=%s", type(error).__name__)
    return _response(500, error_body("server_error", "Something went wrong on our side."))


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, api_error_response)
    app.register_error_handler(HTTPException, http_exception_response)
    app.register_error_handler(Exception, unexpected_error_response)
