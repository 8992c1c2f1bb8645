"""POST /api/v1/activity (issue #12, section 1): a batch written in one INSERT, all or
nothing; every refusal a 422 naming the item and the field; a per-caller rate limit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from core.activity import MAX_METADATA_BYTES
from core.catalog import Role
from models import User, UserActivity
from models.db import db as database

URL = "/api/v1/activity"


def moment(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def item(activity_type: str = "app_open", **fields: Any) -> dict[str, Any]:
    return {"activity_type": activity_type, "occurred_at": moment(), **fields}


def rows(session) -> list[UserActivity]:
    session.rollback()
    return list(session.scalars(select(UserActivity).order_by(UserActivity.id)))


@pytest.fixture
def activity_inserts(app) -> Iterator[list[str]]:
    """The INSERT statements into user_activity the engine runs meanwhile."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("INSERT INTO USER_ACTIVITY"):
            seen.append(statement)

    engine = database.engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_a_batch_is_written_with_one_insert(client, auth_header, db_session, activity_inserts):
    kinds = ["app_open", "swipe", "profile_view", "message_sent", "match_opened",
             "notification_opened", "app_background"]  # fmt: skip
    items = [item(kind, metadata={"n": n}) for n, kind in enumerate(kinds)]
    items[0]["occurred_at"] = moment(hours=-23)

    response = client.post(URL, json={"items": items}, headers=auth_header("alice"))

    assert response.status_code == 202, response.json
    assert response.json["success"] is True
    assert response.json["data"] == {"accepted": len(kinds)}
    assert len(activity_inserts) == 1
    stored = rows(db_session)
    assert [r.activity_type for r in stored] == kinds
    assert {r.user_id for r in stored} == {"alice"}
    assert [r.details for r in stored] == [{"n": n} for n in range(len(kinds))]
    assert stored[0].occurred_at < datetime.now(UTC) - timedelta(hours=22)


def test_a_user_may_name_their_own_user_id(client, auth_header, db_session):
    response = client.post(
        URL, json={"items": [item(user_id="alice")]}, headers=auth_header("alice")
    )
    assert response.status_code == 202
    assert [r.user_id for r in rows(db_session)] == ["alice"]


def test_a_service_reports_for_users_and_makes_them_if_new(client, auth_header, db_session):
    response = client.post(
        URL,
        json={"items": [item(user_id="bob"), item("swipe", user_id="carol")]},
        headers=auth_header("backend", Role.SERVICE),
    )
    assert response.status_code == 202, response.json
    assert response.json["data"] == {"accepted": 2}
    assert [r.user_id for r in rows(db_session)] == ["bob", "carol"]
    assert db_session.get(User, "backend") is None


def test_a_few_minutes_of_clock_skew_are_accepted(client, auth_header, db_session):
    response = client.post(
        URL, json={"items": [item(occurred_at=moment(minutes=4))]}, headers=auth_header("alice")
    )
    assert response.status_code == 202


def _refused(response, index: int, field: str) -> None:
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "validation_error"
    fields = response.json["error"]["details"]["fields"]
    assert list(fields) == ["items"]
    assert list(fields["items"]) == [str(index)]
    assert list(fields["items"][str(index)]) == [field]
    assert fields["items"][str(index)][field]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"activity_type": "levitate"}, "activity_type"),
        ({"occurred_at": moment(minutes=10)}, "occurred_at"),
        ({"occurred_at": moment(hours=-25)}, "occurred_at"),
        ({"occurred_at": "2026-11-26T01:00:00"}, "occurred_at"),  # no offset
        ({"metadata": {"blob": "x" * MAX_METADATA_BYTES}}, "metadata"),
        ({"user_id": "bob"}, "user_id"),  # a user posting for someone else
    ],
    ids=["unknown-type", "future", "too-old", "naive", "metadata-too-big", "someone-else"],
)
def test_a_refused_item_is_named_and_nothing_of_the_batch_is_written(
    client, auth_header, db_session, bad, field
):
    items = [item(), item("swipe"), item("profile_view"), {**item("swipe"), **bad}, item()]

    response = client.post(URL, json={"items": items}, headers=auth_header("alice"))

    _refused(response, 3, field)
    assert rows(db_session) == []


def test_a_service_must_name_the_user(client, auth_header, db_session):
    response = client.post(
        URL,
        json={"items": [item(user_id="bob"), item()]},
        headers=auth_header("backend", Role.SERVICE),
    )
    _refused(response, 1, "user_id")
    assert rows(db_session) == []


def test_metadata_of_exactly_2_kb_is_accepted(client, auth_header, db_session):
    overhead = len('{"blob":""}')
    metadata = {"blob": "x" * (MAX_METADATA_BYTES - overhead)}
    response = client.post(
        URL, json={"items": [item(metadata=metadata)]}, headers=auth_header("alice")
    )
    assert response.status_code == 202


@pytest.mark.parametrize("count", [0, 101])
def test_an_empty_batch_or_more_than_100_items_is_refused(client, auth_header, db_session, count):
    response = client.post(URL, json={"items": [item()] * count}, headers=auth_header("alice"))
    assert response.status_code == 422
    assert list(response.json["error"]["details"]["fields"]) == ["items"]
    assert rows(db_session) == []


def test_100_items_are_accepted(client, auth_header, db_session):
    response = client.post(URL, json={"items": [item()] * 100}, headers=auth_header("alice"))
    assert response.status_code == 202
    assert response.json["data"] == {"accepted": 100}
    assert db_session.scalar(select(func.count()).select_from(UserActivity)) == 100


def test_the_rate_limit_is_per_user_and_answers_429(make_app_client, auth_header, db_session):
    client = make_app_client(RATE_LIMIT_ACTIVITY="3 per minute")
    statuses = [
        client.post(URL, json={"items": [item()]}, headers=auth_header("alice")).status_code
        for _ in range(4)
    ]
    other = client.post(URL, json={"items": [item()]}, headers=auth_header("bob"))

    assert statuses == [202, 202, 202, 429]
    assert other.status_code == 202
    limited = client.post(URL, json={"items": [item()]}, headers=auth_header("alice"))
    assert limited.json["error"]["code"] == "rate_limited"
    assert "Retry-After" in limited.headers
    assert len(rows(db_session)) == 4
