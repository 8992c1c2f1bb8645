"""Request-level guards that run before any view: body size and content type."""

from __future__ import annotations

from flask import Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from api.errors import UnsupportedMediaType

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _has_body() -> bool:
    return (
        bool(request.content_length)
        or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    )


def require_json_body() -> None:
    """A request that carries a body must carry JSON, and no more than MAX_CONTENT_LENGTH."""
    if request.method not in BODY_METHODS or not _has_body():
        return
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"The body is larger than {limit} bytes.")
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(
            f"Send the body as application/json, not {mimetype or 'an unnamed type'}.",
            details={"content_type": request.content_type},
        )


def drop_retry_after_unless_limited(response: Response) -> Response:
    """Flask-Limiter sends Retry-After on every limited route; it only means something on a 429
    (or a 503), so that clients never wait after a success."""
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response
