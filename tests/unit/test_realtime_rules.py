"""Table tests of the real-time rules: presence aggregation over devices, visibility,
typing throttle, the per-connection token bucket, matches and push fallbacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.catalog import NotificationType, PresenceState
from core.matching import is_active_match, ordered_pair, other_participant
from core.presence import HIDDEN, Presence, PresenceFacts, aggregate, may_see, view
from core.realtime_events import push_counterpart, push_data, recipients
from core.socket_limits import full_bucket, take
from core.typing_indicator import progress_allowed, stops_at

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AWAY = timedelta(minutes=5)
OFFLINE = timedelta(minutes=30)
S = PresenceState


def ago(**kwargs: float) -> datetime:
    return NOW - timedelta(**kwargs)


@pytest.mark.parametrize(
    ("facts", "status", "last_seen", "changes_at"),
    [
        (PresenceFacts(), S.OFFLINE, None, None),
        (
            PresenceFacts(live_activity=(ago(seconds=10),)),
            S.ONLINE,
            ago(seconds=10),
            ago(seconds=10) + AWAY,
        ),
        # any active connection keeps the user online
        (
            PresenceFacts(live_activity=(ago(minutes=20), ago(minutes=1))),
            S.ONLINE,
            ago(minutes=1),
            ago(minutes=1) + AWAY,
        ),
        # every connection idle past AWAY_AFTER_SECONDS
        (
            PresenceFacts(live_activity=(ago(minutes=20), ago(minutes=6))),
            S.AWAY,
            ago(minutes=6),
            None,
        ),
        (PresenceFacts(live_activity=(ago(minutes=5),)), S.AWAY, ago(minutes=5), None),
        (
            PresenceFacts(live_activity=(ago(seconds=1),), chosen=S.BUSY),
            S.BUSY,
            ago(seconds=1),
            None,
        ),
        (PresenceFacts(live_activity=(ago(hours=2),), chosen=S.BUSY), S.BUSY, ago(hours=2), None),
        (
            PresenceFacts(live_activity=(ago(seconds=1),), chosen=S.AWAY),
            S.AWAY,
            ago(seconds=1),
            None,
        ),
        # the last connection closed: away with last_seen, then offline
        (
            PresenceFacts(last_seen=ago(minutes=10)),
            S.AWAY,
            ago(minutes=10),
            ago(minutes=10) + OFFLINE,
        ),
        (PresenceFacts(last_seen=ago(minutes=30)), S.OFFLINE, ago(minutes=30), None),
        # busy does not outlive the connections
        (
            PresenceFacts(last_seen=ago(minutes=1), chosen=S.BUSY),
            S.AWAY,
            ago(minutes=1),
            ago(minutes=1) + OFFLINE,
        ),
        # a connected device wins over a background one
        (
            PresenceFacts(live_activity=(ago(seconds=5),), last_seen=ago(seconds=1)),
            S.ONLINE,
            ago(seconds=5),
            ago(seconds=5) + AWAY,
        ),
    ],
)
def test_presence_is_aggregated_over_devices(facts, status, last_seen, changes_at):
    assert aggregate(facts, NOW, AWAY, OFFLINE) == Presence(status, last_seen, changes_at)


@pytest.mark.parametrize(
    ("viewer", "subject", "visibility", "matched", "visible"),
    [
        ("a", "b", "everyone", False, True),
        ("a", "b", None, False, False),  # no visibility known: private (matches)
        ("a", "b", None, True, True),
        ("a", "b", "matches", True, True),
        ("a", "b", "matches", False, False),
        ("a", "b", "nobody", True, False),
        ("b", "b", "nobody", False, True),
    ],
)
def test_visibility(viewer, subject, visibility, matched, visible):
    assert may_see(viewer, subject, visibility, matched) is visible


def test_a_hidden_user_looks_offline_without_last_seen():
    real = Presence(S.ONLINE, NOW, NOW + AWAY)
    assert view(real, visible=False) == HIDDEN == Presence(S.OFFLINE, None)
    assert view(real, visible=True) == real


@pytest.mark.parametrize(
    ("last", "now", "allowed"),
    [(None, 10.0, True), (10.0, 10.2, False), (10.0, 10.499, False), (10.0, 10.5, True)],
)
def test_progress_is_forwarded_at_most_once_per_interval(last, now, allowed):
    assert progress_allowed(last, now, 500) is allowed


def test_typing_stops_ten_seconds_after_the_last_signal():
    assert stops_at(100.0, 10) == 110.0


def test_the_token_bucket_allows_a_burst_then_the_rate():
    bucket = full_bucket(3, 0.0)
    results = []
    for _ in range(4):
        allowed, bucket = take(bucket, 0.0, rate_per_second=2, burst=3)
        results.append(allowed)
    assert results == [True, True, True, False]
    assert take(bucket, 0.5, rate_per_second=2, burst=3)[0] is True


@pytest.mark.parametrize(
    ("status", "expires_at", "active"),
    [
        ("matched", None, True),
        ("matched", NOW + timedelta(hours=1), True),
        ("matched", NOW - timedelta(seconds=1), False),
        ("unmatched", None, False),
        ("expired", None, False),
    ],
)
def test_a_match_counts_while_matched_and_unexpired(status, expires_at, active):
    assert is_active_match(status, expires_at, NOW) is active


def test_pairs_and_participants():
    assert ordered_pair("zoe", "adam") == ("adam", "zoe")
    assert other_participant("adam", "adam", "zoe") == "zoe"
    assert other_participant("eve", "adam", "zoe") is None


@pytest.mark.parametrize(
    ("event_type", "payload", "push"),
    [
        ("match_update", {"status": "matched"}, NotificationType.NEW_MATCH),
        ("match_update", {"status": "unmatched"}, None),
        ("match_expiration_warning", {}, NotificationType.MATCH_EXPIRING),
        ("conversation_started", {}, NotificationType.CONVERSATION_STARTED),
        ("boost_activated", {}, NotificationType.BOOST_ACTIVATED),
        ("discovery_update", {}, None),
        ("profile_removed", {}, None),
        ("notification", {}, None),
    ],
)
def test_push_counterparts(event_type, payload, push):
    assert push_counterpart(event_type, payload) == push


def test_recipients_and_push_data():
    assert recipients("match_update", "a", "b") == ["a", "b"]
    assert recipients("discovery_update", "a", "b") == ["b"]
    data = push_data("e1", "match_update", {"match_id": "m", "nested": {"x": 1}, "n": 3})
    assert data == {"event_id": "e1", "event_type": "match_update", "match_id": "m", "n": "3"}
