"""Pulse's API errors and the one path that turns any error into the JSON envelope.

Raise an ApiError subclass anywhere below a view; never build an error response by
hand. A 500 never carries a trace or an exception message to the client.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

UNKNOWN_FIELD_MESSAGE = "Unknown field."


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


class NotFound(ApiError):
    status = 404
    code = "not_found"
    message = "No such resource."


class Conflict(ApiError):
    status = 409
    code = "conflict"
    message = "The request conflicts with the current state."


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": message, "details": details or {}}}


def _response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def api_error_response(error: ApiError) -> Response:
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
    log.exception("event=unhandled_error error_type=%s", type(error).__name__)
    return _response(500, error_body("server_error", "Something went wrong on our side."))


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, api_error_response)
    app.register_error_handler(HTTPException, http_exception_response)
    app.register_error_handler(Exception, unexpected_error_response)
