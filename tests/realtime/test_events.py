"""Backend events: POST /api/v1/realtime/events (role service) and publish_event store a
row; the broadcast job (a real RQ worker) sends it to the target's sockets, or, when the
target is not connected and the type has a push counterpart, hands the push to the
pipeline. match_update upserts the matches table."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

import runtime as worker_runtime
from core.catalog import Role
from intake.queues import make_worker
from models.db import db
from models.events import RealtimeEvent
from models.notifications import Notification
from models.users import Match

URL = "/api/v1/realtime/events"


@pytest.fixture
def work(app, test_settings) -> Iterator:
    runtime = worker_runtime.configure(test_settings)

    def run() -> None:
        make_worker(runtime.redis).work(burst=True)

    yield run
    worker_runtime.shutdown()


def post(client, auth_header, body, role=Role.SERVICE):
    return client.post(URL, json=body, headers=auth_header("matching-service", role))


def test_only_services_may_publish(client, auth_header, users):
    (alice,) = users(1)
    body = {"event_type": "discovery_update", "target_user_id": alice}
    assert post(client, auth_header, body, Role.USER).status_code == 403
    assert post(client, auth_header, body).status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_type": "earthquake", "target_user_id": "a"}, "event_type"),
        ({"event_type": "discovery_update"}, "target_user_id"),
        ({"event_type": "match_update", "target_user_id": "a", "payload": {}}, "target_user_id"),
        (
            {"event_type": "match_update", "user_id": "a", "target_user_id": "b", "payload": {}},
            "payload",
        ),
    ],
)
def test_bad_events_are_refused_naming_the_field(client, auth_header, body, field):
    response = post(client, auth_header, body)
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["details"]["fields"]


def test_an_event_reaches_the_targets_sockets(
    gateway, clients, token, users, client, auth_header, work
):
    alice, bob = users(2)
    me = clients(gateway, token(alice))
    response = post(
        client,
        auth_header,
        {
            "event_type": "discovery_update",
            "target_user_id": alice,
            "user_id": bob,
            "payload": {"profile_id": bob, "reason": "new_profile"},
        },
    )
    assert response.status_code == 202, response.json
    event_id = response.json["data"]["event_ids"][0]
    work()
    received = me.wait_for("discovery_update")
    assert received["id"] == event_id
    assert received["user_id"] == bob
    assert received["payload"] == {"profile_id": bob, "reason": "new_profile"}
    assert received["emitted_at"] is not None
    with db.session_scope() as session:
        row = session.get(RealtimeEvent, event_id)
        assert row.processed is True


def test_match_update_upserts_the_match_and_reaches_both(
    gateway, clients, token, users, client, auth_header, work
):
    alice, bob = users(2)
    alice_client = clients(gateway, token(alice))
    bob_client = clients(gateway, token(bob))
    expires = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    body = {
        "event_type": "match_update",
        "user_id": alice,
        "target_user_id": bob,
        "payload": {
            "status": "matched",
            "conversation_id": f"conv-{alice}",
            "expires_at": expires.isoformat(),
        },
    }
    response = post(client, auth_header, body)
    assert response.status_code == 202, response.json
    with db.session_scope() as session:
        match = session.scalars(select(Match).where(Match.conversation_id == f"conv-{alice}")).one()
        assert {match.user_a_id, match.user_b_id} == {alice, bob}
        assert match.status == "matched"
        assert match.expires_at == expires
    work()
    for person in (alice_client, bob_client):
        update = person.wait_for("match_update")
        assert update["payload"]["status"] == "matched"
        assert update["payload"]["match_id"] == response.json["data"]["match_id"]
    assert alice_client.call("typing_start", {"conversation_id": f"conv-{alice}"})["ok"] is True

    body["payload"] = {"status": "unmatched"}
    assert post(client, auth_header, body).status_code == 202
    answer = alice_client.call("typing_start", {"conversation_id": f"conv-{alice}"})
    assert answer["error"]["code"] == "forbidden"


def test_an_offline_target_gets_the_push_instead(
    gateway, users, client, auth_header, work, register
):
    alice, bob = users(2)
    for event_type, payload in [
        ("match_update", {"status": "matched"}),
        ("discovery_update", {"profile_id": bob}),
    ]:
        response = post(
            client,
            auth_header,
            {"event_type": event_type, "user_id": bob, "target_user_id": alice, "payload": payload},
        )
        assert response.status_code == 202
    work()
    with db.session_scope() as session:
        pushes = session.scalars(select(Notification).where(Notification.user_id == alice)).all()
        assert [p.notification_type for p in pushes] == ["new_match"]
        assert pushes[0].data["event_type"] == "match_update"
        both = session.scalars(select(Notification).where(Notification.user_id == bob)).all()
        assert [p.notification_type for p in both] == ["new_match"]


def test_publish_event_from_a_service_in_process(gateway, clients, token, users, work):
    from intake.client import publish_event

    (alice,) = users(1)
    me = clients(gateway, token(alice))
    answer = publish_event("boost_activated", alice, payload={"minutes": 30})
    assert answer["count"] == 1
    sent = time.monotonic()
    work()
    assert me.wait_for("boost_activated")["payload"] == {"minutes": 30}
    assert time.monotonic() - sent < 5
