"""Request-level guards that run before any view: body size and content type."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from api.errors import UnsupportedMediaType, ValidationFailed

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
    path = _path_of_nul(request.get_json(silent=True))
    if path is not None:
        # PostgreSQL cannot store U+0000 in text or JSONB: refuse it up front, by name.
        raise ValidationFailed(
            f"{path or 'the body'} contains a NUL character (U+0000).",
            details={"fields": {path or "_body": ["NUL characters are not allowed."]}},
        )


def _path_of_nul(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (or key) holding U+0000, or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, list):
        items: Iterable[tuple[str, Any]] = (
            (f"{path}.{i}" if path else str(i), v) for i, v in enumerate(value)
        )
    elif isinstance(value, dict):
        for key in value:
            if "\x00" in key:
                return f"{path}.{key!r}" if path else repr(key)
        items = ((f"{path}.{k}" if path else k, v) for k, v in value.items())
    else:
        return None
    for child_path, child in items:
        found = _path_of_nul(child, child_path)
        if found is not None:
            return found
    return None


def drop_retry_after_unless_limited(response: Response) -> Response:
    """Flask-Limiter sends Retry-After on every limited route; it only means something on a 429
    (or a 503), so that clients never wait after a success."""
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response
