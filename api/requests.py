"""Request-level guards that run before any view: body size, content type, and a body
that Pulse can read and store (JSON, not nested too deeply, no NUL or lone surrogate)."""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Response, current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from api.errors import MalformedJson, TooDeeplyNested, UnsupportedMediaType, ValidationFailed

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Arrays and objects inside one another, counted from the body itself (`{"a": [1]}` is 2).
# No Pulse payload needs more than a few; a bound keeps every later step (webargs,
# marshmallow, JSONB, logging) clear of Python's recursion limit. Socket.IO payloads share it.
MAX_JSON_DEPTH = 32


def _has_body() -> bool:
    return (
        bool(request.content_length)
        or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    )


def require_json_body() -> None:
    """A request that carries a body must carry JSON, and no more than MAX_CONTENT_LENGTH;
    its JSON must be one Pulse can read (see `check_json`)."""
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
    if request.routing_exception is not None:
        return  # no such route or method: its 404 or 405 says more than the body would
    check_json(parse_json_body(request.get_data(cache=True)))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:20]} is out of range")
    return number


def _bounded_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # over sys.get_int_max_str_digits()
        raise ValueError(f"an integer of {len(text)} digits is too long") from None


def parse_json_body(raw: bytes) -> Any:
    """The body as JSON (UTF-8, as webargs reads it), strictly: NaN, Infinity, numbers out
    of a double's range and integers over Python's 4300 digits are refused as malformed
    (PostgreSQL's JSONB would refuse them later, as a 500); nesting beyond what the parser
    can recurse into is refused as too deep."""
    try:
        return json.loads(
            raw.decode("utf-8"),
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, the refusals above
        reason = "it is not UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise MalformedJson(f"The request body is not valid JSON: {reason}.") from None


def _too_deep() -> TooDeeplyNested:
    return TooDeeplyNested(
        f"The JSON body nests arrays or objects more than {MAX_JSON_DEPTH} levels deep.",
        details={"max_depth": MAX_JSON_DEPTH},
    )


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply arrays and objects nest in `value` (0 for a scalar), counted without
    recursion; the walk stops at limit + 1 (already too deep)."""
    if not isinstance(value, dict | list):
        return 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        children = container.values() if isinstance(container, dict) else container
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def check_json(value: Any) -> None:
    """Refuse JSON nested more than MAX_JSON_DEPTH levels deep (400 too_deeply_nested), and
    values PostgreSQL cannot store, naming where (422): U+0000, a lone surrogate
    (`"\\ud800"` is valid JSON but not UTF-8), NaN or Infinity."""
    if json_depth(value) > MAX_JSON_DEPTH:
        raise _too_deep()
    found = _unstorable_value(value)
    if found is not None:
        path, (what, rule) = found
        raise ValidationFailed(
            f"{path or 'the body'} contains {what}.",
            details={"fields": {path or "_body": [rule]}},
        )


_NUL = ("a NUL character (U+0000)", "NUL characters are not allowed.")
_SURROGATE = (
    "a lone surrogate (U+D800 to U+DFFF)",
    "Unpaired surrogates are not allowed: send the character itself or its pair.",
)

# Parsed HTTP bodies never hold one (parse_json_body refuses them); Socket.IO payloads may.
_NOT_FINITE = ("a number that is not finite (NaN or Infinity)", "Numbers must be finite.")


def _flaw(text: str) -> tuple[str, str] | None:
    if "\x00" in text:
        return _NUL
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE
    return None


def _unstorable_value(value: Any) -> tuple[str, tuple[str, str]] | None:
    """The dotted path of a value (or key) PostgreSQL could not store, and why; or None.
    Without recursion; a path is only spelt out for the one found."""
    if isinstance(value, str):
        flaw = _flaw(value)
        return None if flaw is None else ("", flaw)
    if isinstance(value, float):
        return None if math.isfinite(value) else ("", _NOT_FINITE)
    if not isinstance(value, dict | list):
        return None
    stack: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while stack:
        path, container = stack.pop()
        pairs = container.items() if isinstance(container, dict) else enumerate(container)
        for key, child in pairs:
            if isinstance(key, str):
                flaw = _flaw(key)
                if flaw is not None:
                    return _dotted((*path, repr(key))), flaw
            if isinstance(child, str):
                flaw = _flaw(child)
                if flaw is not None:
                    return _dotted((*path, key)), flaw
            elif isinstance(child, float) and not math.isfinite(child):
                return _dotted((*path, key)), _NOT_FINITE
            elif isinstance(child, dict | list):
                stack.append(((*path, key), child))
    return None


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in path)


def drop_retry_after_unless_limited(response: Response) -> Response:
    """Flask-Limiter sends Retry-After on every limited route; it only means something on a 429
    (or a 503), so that clients never wait after a success. An error that set its own (a 503
    `unavailable`: a few seconds) keeps it, not the limit window's."""
    if "retry_after" in g:
        response.headers["Retry-After"] = g.retry_after
    elif response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response
