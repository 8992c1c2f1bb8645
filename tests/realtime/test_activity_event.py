"""The socket's `activity` event writes as POST /api/v1/activity does (models.activity.
record_activity): a row with its occurred_at, the same metadata limit, nothing on a
refusal."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

import api.sockets.presence as socket_presence
import models.activity
from core.activity import MAX_METADATA_BYTES
from models.activity import UserActivity
from tests.waiting import wait_until


def stored(session, user_id: str) -> list[UserActivity]:
    session.rollback()
    return list(session.scalars(select(UserActivity).where(UserActivity.user_id == user_id)))


def test_the_socket_event_writes_through_record_activity():
    """The handler has no write of its own: it calls the batch's function."""
    assert socket_presence.record_activity is models.activity.record_activity


def test_an_activity_event_writes_a_row_that_happened_now(
    gateway, clients, token, users, db_session
):
    (alice,) = users(1)
    me = clients(gateway, token(alice))
    before = datetime.now(UTC)

    assert me.call("activity", {"activity_type": "swipe", "metadata": {"dir": "right"}}) == {
        "ok": True
    }

    wait_until(lambda: stored(db_session, alice), 5)
    (row,) = stored(db_session, alice)
    assert row.activity_type == "swipe"
    assert row.details == {"dir": "right"}
    assert before - timedelta(seconds=5) <= row.occurred_at <= datetime.now(UTC)


def test_metadata_over_2_kb_is_refused_on_the_socket_too(
    gateway, clients, token, users, db_session
):
    (alice,) = users(1)
    me = clients(gateway, token(alice))

    answer = me.call(
        "activity", {"activity_type": "swipe", "metadata": {"blob": "x" * MAX_METADATA_BYTES}}
    )

    assert answer["ok"] is False, answer
    assert answer["error"]["code"] == "invalid_payload"
    assert "metadata" in answer["error"]["details"]["fields"]
    time.sleep(0.2)
    assert stored(db_session, alice) == []
