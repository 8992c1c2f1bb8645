"""Bad input tried from outside, on every endpoint the app serves (issue #10, point 7).

The endpoints are read from the app's url_map, not listed here, so that a new endpoint is
covered the day it is added:

- every JSON endpoint answers any body up to MAX_REQUEST_BYTES, at any depth, with a 4xx
  in the envelope (never a 500), and a body nested more than MAX_JSON_DEPTH levels deep
  with a 400 `too_deeply_nested`, before anything is written;
- every endpoint answers every role as README's API table says ("who"): a role it does not
  admit gets a 403 `forbidden` naming the roles that may, and writes nothing; a role it
  admits is never refused and never gets a 5xx.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from api.requests import MAX_JSON_DEPTH
from core.catalog import Role
from models import Base
from tests.factories import EXPO_TOKEN, make_env

README = Path(__file__).resolve().parents[2] / "README.md"
API_PREFIX = "/api/v1"
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
MAX_REQUEST_BYTES = 1_048_576  # the default, which README's error table states


@pytest.fixture
def env(database_url: str, redis_url: str) -> dict[str, str]:
    """Limits high enough for a call per endpoint and role (each call has its own user)."""
    return make_env(
        database_url,
        redis_url,
        RATE_LIMIT_REGISTER_TOKEN="100000 per hour",
        RATE_LIMIT_SETTINGS="100000 per hour",
    )


# --- the endpoints, from the url_map ---------------------------------------------------------


def _readme_path(rule: str) -> str:
    """/api/v1/notifications/<uuid:notification_id> -> /notifications/<>, as README's
    table is matched: path parameters unnamed, no trailing slash."""
    path = re.sub(r"<[^>]*>", "<>", rule.removeprefix(API_PREFIX))
    return path.rstrip("/") or "/"


def _concrete(rule: str) -> str:
    """A URL for the rule: a fresh UUID or a user id in place of each parameter."""

    def value(match: re.Match[str]) -> str:
        return str(uuid.uuid4()) if match.group(1) == "uuid" else "someone-else"

    return re.sub(r"<(?:(\w+):)?\w+>", value, rule)


def api_endpoints(app: Flask) -> list[tuple[str, str, str]]:
    """(method, URL, README path) of every endpoint under /api/v1."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIX):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, _concrete(rule.rule), _readme_path(rule.rule)))
    return sorted(found, key=lambda e: (e[2], e[0]))


def json_endpoints(app: Flask) -> list[tuple[str, str, str]]:
    return [endpoint for endpoint in api_endpoints(app) if endpoint[0] in BODY_METHODS]


def test_the_app_serves_the_endpoints_this_file_tries(app):
    """A guard on the enumeration itself: the endpoints known today are all found, so that a
    broken url_map walk cannot make every test below pass on nothing."""
    endpoints = {(method, path) for method, _, path in api_endpoints(app)}
    assert {
        ("POST", "/notifications/register-token"),
        ("DELETE", "/notifications/unregister-token"),
        ("GET", "/notifications/settings"),
        ("PUT", "/notifications/settings"),
        ("POST", "/notifications/send"),
        ("GET", "/notifications/<>"),
        ("GET", "/notifications"),
        ("GET", "/notifications/users/<>/devices"),
        ("GET", "/realtime/status"),
        ("POST", "/realtime/heartbeat"),
        ("POST", "/realtime/events"),
        ("POST", "/activity"),
    } <= endpoints


# --- who may call what: README's table -------------------------------------------------------

_ROW = re.compile(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/[^`? ]*)[^`]*` \| ([^|]+) \|")
# README's words in the "who" column -> the roles they admit. "the user" is the signed-in
# person, whose token is a user's or an admin's (README: the sentence above the table).
_WHO = {
    "the user": {Role.USER, Role.ADMIN},
    "its user": {Role.USER},
    "admin": {Role.ADMIN},
    "service": {Role.SERVICE},
}


def readme_roles() -> dict[tuple[str, str], set[Role]]:
    """(method, README path) -> the roles README's API table admits."""
    table: dict[tuple[str, str], set[Role]] = {}
    section = README.read_text().split("## The HTTP API", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        method, path, who = match.groups()
        roles: set[Role] = set()
        for word in (part.strip() for part in who.split(",")):
            assert word in _WHO, f"README's 'who' {word!r} ({method} {path}) is not known here"
            roles |= _WHO[word]
        table[(method, _readme_path(path))] = roles
    return table


def _body_for(method: str, path: str) -> Any:
    """A body the endpoint would accept from a role it admits (`{}` for one not known here:
    its answer may be a 422, but never a 403 or a 5xx)."""
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/notifications/register-token"): {"token": EXPO_TOKEN, "platform": "ios"},
        ("DELETE", "/notifications/unregister-token"): {"token_id": str(uuid.uuid4())},
        ("PUT", "/notifications/settings"): {"quiet_hours": {"start": "23:00", "end": "07:00"}},
        ("POST", "/notifications/send"): {
            "notification_type": "new_match",
            "target": {"user_ids": ["someone-else"]},
        },
        ("POST", "/realtime/events"): {
            "event_type": "boost_activated",
            "target_user_id": "someone-else",
            "payload": {"minutes": 30},
        },
        ("POST", "/realtime/heartbeat"): {},
        ("POST", "/activity"): {
            "items": [
                {
                    "activity_type": "app_open",
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "user_id": "someone-else",
                }
            ]
        },
    }
    if method not in BODY_METHODS:
        return None
    return bodies.get((method, path), {})


def table_counts(session) -> dict[str, int]:
    return {
        table.name: session.execute(text(f"SELECT count(*) FROM {table.name}")).scalar_one()
        for table in Base.metadata.sorted_tables
    }


def test_every_endpoint_is_in_readmes_table(app):
    documented = readme_roles()
    missing = [
        f"{method} {path}"
        for method, _, path in api_endpoints(app)
        if (method, path) not in documented
    ]
    assert not missing, f"not in README's API table (who may call it?): {missing}"


@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.value)
def test_every_endpoint_answers_every_role_as_readme_says(
    app, client, auth_header, db_session, role
):
    documented = readme_roles()
    failures = []
    for number, (method, url, path) in enumerate(api_endpoints(app)):
        allowed = documented.get((method, path))
        if allowed is None:
            continue  # test_every_endpoint_is_in_readmes_table names it
        user_id = f"{role.value}-{number}-{uuid.uuid4().hex[:8]}"
        before = table_counts(db_session)
        response = client.open(
            url, method=method, json=_body_for(method, path), headers=auth_header(user_id, role)
        )
        body = response.json or {}
        where = f"{role.value} {method} {path}: {response.status_code} {body}"
        if role in allowed:
            if response.status_code == 403 or response.status_code >= 500:
                failures.append(f"admitted by README, but {where}")
            continue
        error = body.get("error") or {}
        if response.status_code != 403 or error.get("code") != "forbidden":
            failures.append(f"not admitted by README, but {where}")
            continue
        if error["details"].get("role") != role.value or set(
            error["details"].get("allowed_roles", [])
        ) != {r.value for r in allowed}:
            failures.append(f"the 403 does not name the role and the roles that may: {where}")
        if not all(name in error["message"] for name in sorted(r.value for r in allowed)):
            failures.append(f"the 403's message does not say who may: {where}")
        db_session.expire_all()
        if table_counts(db_session) != before:
            failures.append(f"a refused call wrote rows: {where}")
    assert not failures, "\n".join(failures)


def test_a_user_endpoint_tells_a_service_it_acts_for_the_signed_in_user(client, auth_header):
    response = client.get(
        "/api/v1/notifications/settings", headers=auth_header("matching", Role.SERVICE)
    )
    assert response.status_code == 403
    error = response.json["error"]
    assert error["code"] == "forbidden"
    assert "signed-in user" in error["message"]
    assert error["details"] == {"role": "service", "allowed_roles": ["user", "admin"]}


# --- any body, any depth, any size: a 4xx ----------------------------------------------------


def nested(depth: int, kind: str = "array", leaf: str = "1") -> str:
    """JSON text of `depth` arrays (or objects) inside one another around `leaf`."""
    if kind == "array":
        return "[" * depth + leaf + "]" * depth
    return '{"a":' * depth + leaf + "}" * depth


def in_field(depth: int, kind: str = "array") -> str:
    """A body whose field `token` holds the nesting: `depth` levels counted from the body."""
    return '{"platform": "ios", "token": ' + nested(depth - 1, kind) + "}"


TOO_DEEP = {
    "array, 5000 deep": nested(5000),
    "object, 5000 deep": nested(5000, "object"),
    "in a field, arrays, 5000 deep": in_field(5000),
    "in a field, objects, 5000 deep": in_field(5000, "object"),
    "just over the limit": in_field(MAX_JSON_DEPTH + 1),
    "just over the limit, objects": nested(MAX_JSON_DEPTH + 1, "object"),
    "900 deep (the parser copes, the limit does not)": in_field(900, "object"),
    "as deep as MAX_REQUEST_BYTES allows": nested(MAX_REQUEST_BYTES // 2 - 1, leaf="0"),
    "deep in a wide body": "[" + ",".join(["1"] * 100_000) + "," + nested(40) + "]",
}

UNREADABLE = {
    "unclosed, 100000 deep": "[" * 100_000,
    "unclosed objects, 50000 deep": '{"a":' * 50_000,
    "closed in the wrong order": "[{" * 1000 + "]}" * 1000,
    "NaN": '{"token": NaN, "platform": "ios"}',
    "Infinity": '{"token": "x", "platform": "ios", "data": {"n": -Infinity}}',
    "a number out of range": '{"token": 1e999, "platform": "ios"}',
    "an integer of 5000 digits": '{"token": ' + "7" * 5000 + ', "platform": "ios"}',
    "a lone surrogate": '{"token": "\\ud800", "platform": "ios", "device_id": "\\udfff"}',
    "a lone surrogate in a key": '{"\\ud83d": 1}',
    "NUL in a nested value": '{"target": {"user_ids": ["u\\u0000"]}, "data": {"k": "\\u0000"}}',
    "not UTF-8": b'{"token": "\xff\xfe", "platform": "ios"}',
    "a BOM": '\ufeff{"token": "x"}'.encode(),
    "a lone string": '"just text"',
    "empty object keys, 32 deep": nested(MAX_JSON_DEPTH, "object"),
    "exactly the limit, in a field": in_field(MAX_JSON_DEPTH),
    "a wide flat body near the limit": "[" + ",".join(["1"] * 500_000) + "]",
}


def _role_for(method: str, path: str) -> Role:
    """A role the endpoint admits, so that only the body can be wrong."""
    allowed = readme_roles().get((method, path), set(Role))
    return next(role for role in Role if role in allowed)


def _assert_4xx_envelope(response: Any, where: str) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, f"{where}: {response.status_code}"
    body = response.json
    assert body["success"] is False, where
    assert set(body["error"]) == {"code", "message", "details"}, where
    assert body["error"]["message"], where
    return body["error"]


@pytest.mark.parametrize("name", list(TOO_DEEP))
def test_a_body_nested_too_deeply_is_400_on_every_json_endpoint(
    app, client, auth_header, db_session, name
):
    raw = TOO_DEEP[name]
    assert len(raw.encode()) <= MAX_REQUEST_BYTES
    before = table_counts(db_session)
    for method, url, path in json_endpoints(app):
        response = client.open(
            url,
            method=method,
            data=raw,
            content_type="application/json",
            headers=auth_header("deep-diver", _role_for(method, path)),
        )
        error = _assert_4xx_envelope(response, f"{method} {path}")
        assert response.status_code == 400, f"{method} {path}: {error}"
        assert error["code"] == "too_deeply_nested", f"{method} {path}: {error}"
        assert error["details"] == {"max_depth": MAX_JSON_DEPTH}
        assert str(MAX_JSON_DEPTH) in error["message"]
    # Refused before authentication ran: not even the caller's users row was written.
    db_session.expire_all()
    assert table_counts(db_session) == before


def _post_raw(client, auth_header, method: str, url: str, path: str, raw: Any) -> Any:
    """`raw` as a JSON body, by a fresh caller of a role the endpoint admits."""
    return client.open(
        url,
        method=method,
        data=raw,
        content_type="application/json",
        headers=auth_header(f"raw-{uuid.uuid4().hex[:8]}", _role_for(method, path)),
    )


@pytest.mark.parametrize("name", list(UNREADABLE))
def test_any_other_odd_body_is_a_4xx_on_every_json_endpoint(app, client, auth_header, name):
    for method, url, path in json_endpoints(app):
        response = _post_raw(client, auth_header, method, url, path, UNREADABLE[name])
        _assert_4xx_envelope(response, f"{name}: {method} {path}")


def test_nesting_up_to_the_limit_is_not_refused_for_its_depth(app, client, auth_header):
    """32 levels pass the guard (the schema may still refuse the shape, as a 4xx)."""
    for raw in (in_field(MAX_JSON_DEPTH), nested(MAX_JSON_DEPTH, "object")):
        for method, url, path in json_endpoints(app):
            response = _post_raw(client, auth_header, method, url, path, raw)
            error = _assert_4xx_envelope(response, f"{method} {path}")
            assert error["code"] != "too_deeply_nested", f"{method} {path}: {error}"


def test_nested_data_within_the_limit_is_accepted_where_the_schema_takes_any_json(
    client, auth_header
):
    """A send's `data` may hold nesting (up to the body's limit): it is stored and answered."""
    data = {"match_id": "m-1", "deep": nested_value(MAX_JSON_DEPTH - 2)}
    response = client.post(
        "/api/v1/notifications/send",
        json={"notification_type": "new_match", "target": {"user_ids": ["u1"]}, "data": data},
        headers=auth_header("matching", Role.SERVICE),
    )
    assert response.status_code == 202, response.json


def nested_value(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_a_deep_body_to_a_path_that_does_not_exist_is_still_a_404(client):
    response = client.post(
        "/api/v1/notifications/nothing-here", data=nested(5000), content_type="application/json"
    )
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
