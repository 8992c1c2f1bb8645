"""Presence is private by default: a user's presence is shown to their matches only (the
deployment can choose everyone), anyone else is answered offline with no last_seen, and
watching many people outside one's matches is rate-limited."""

from __future__ import annotations

from tests.realtime.harness import bulk_has

UPDATE = "user_presence_update"


def views(bulk, user_id):
    return [item for item in bulk["users"] if item["user_id"] == user_id]


def test_by_default_only_a_match_sees_a_user_online(private_gateway, clients, token, users, match):
    alice, partner, stranger = users(3)
    match(alice, partner)
    clients(private_gateway, token(alice))
    seen_by_partner = clients(private_gateway, token(partner))
    seen_by_stranger = clients(private_gateway, token(stranger))

    seen_by_partner.call("presence_subscribe", {"user_ids": [alice]})
    seen_by_stranger.call("presence_subscribe", {"user_ids": [alice]})

    partner_view = seen_by_partner.wait_for("presence_bulk_update", bulk_has(alice))
    stranger_view = seen_by_stranger.wait_for("presence_bulk_update", bulk_has(alice))
    assert [v["status"] for v in views(partner_view, alice)] == ["online"]
    assert views(stranger_view, alice) == [
        {"user_id": alice, "status": "offline", "last_seen": None}
    ]


def test_a_stranger_is_told_nothing_when_the_user_leaves(
    private_gateway, clients, token, users, match
):
    alice, partner, stranger = users(3)
    match(alice, partner)
    alice_socket = clients(private_gateway, token(alice))
    seen_by_partner = clients(private_gateway, token(partner))
    seen_by_stranger = clients(private_gateway, token(stranger))
    for watcher in (seen_by_partner, seen_by_stranger):
        watcher.call("presence_subscribe", {"user_ids": [alice]})
        watcher.wait_for("presence_bulk_update", bulk_has(alice))

    sid = alice_socket.sid
    alice_socket.disconnect()
    private_gateway.wait_closed(sid)

    seen_by_partner.wait_for(UPDATE, lambda d: d["user_id"] == alice and d["status"] == "away")
    barrier = seen_by_stranger.barrier()
    assert not seen_by_stranger.received(UPDATE, lambda d: d["user_id"] == alice, before=barrier)


def test_watching_more_strangers_than_the_hourly_limit_is_refused(
    private_gateway, clients, token, users, match
):
    viewer, partner, *strangers = users(6)
    match(viewer, partner)
    me = clients(private_gateway, token(viewer))

    # PRESENCE_STRANGER_SUBSCRIPTIONS_PER_HOUR=3 on this gateway; matches never count.
    assert me.call("presence_subscribe", {"user_ids": [partner, *strangers[:3]]})["ok"] is True
    refused = me.call("presence_subscribe", {"user_ids": [strangers[3]]})
    again_a_match = me.call("presence_subscribe", {"user_ids": [partner]})

    assert refused["ok"] is False
    assert refused["error"]["code"] == "rate_limited"
    assert 0 < refused["error"]["details"]["retry_after_ms"] <= 3_600_000
    assert again_a_match["ok"] is True
