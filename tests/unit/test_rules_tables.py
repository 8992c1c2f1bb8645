"""Table tests of the pure delivery rules: settings and quiet hours in order, caps windows,
batch keys, and content sanitizing."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from core.batching import batch_key, is_summary
from core.caps import OverCap, cap_windows, counts_against_caps, over_cap
from core.catalog import NotificationType as T
from core.catalog import Priority as P
from core.catalog import QuietBehavior as Q
from core.delivery_rules import Action, before_send
from core.preferences import QuietHours, TypePreference
from core.sanitize import cap_bytes, clean_body, clean_title

NOW = datetime(2026, 1, 15, 4, 0, tzinfo=UTC)  # 23:00 in New York
QUIET_NY = QuietHours(time(22), time(8), "America/New_York")
NO_QUIET = QuietHours(time(0), time(0), "UTC")


def pref(enabled=True, push=True, quiet=Q.DEFER):
    return TypePreference(T.NEW_MESSAGE, enabled, push, False, quiet)


@pytest.mark.parametrize(
    ("preference", "priority", "quiet", "active", "kind", "action", "reason"),
    [
        (pref(), P.HIGH, NO_QUIET, False, T.NEW_MESSAGE, Action.SEND, None),
        (
            pref(push=False),
            P.HIGH,
            NO_QUIET,
            False,
            T.NEW_MESSAGE,
            Action.SUPPRESS,
            "setting_disabled",
        ),
        (
            pref(enabled=False),
            P.CRITICAL,
            NO_QUIET,
            False,
            T.NEW_MESSAGE,
            Action.SUPPRESS,
            "setting_disabled",
        ),
        (pref(), P.HIGH, NO_QUIET, True, T.NEW_MESSAGE, Action.SUPPRESS, "user_active"),
        (pref(), P.HIGH, NO_QUIET, True, T.BOOST_ACTIVATED, Action.SEND, None),
        (pref(), P.HIGH, QUIET_NY, False, T.NEW_MESSAGE, Action.DEFER, "quiet_hours"),
        (pref(), P.LOW, QUIET_NY, False, T.NEW_MESSAGE, Action.DEFER, "quiet_hours"),
        (pref(), P.CRITICAL, QUIET_NY, False, T.NEW_MESSAGE, Action.SEND, None),
        (
            pref(quiet=Q.QUIET),
            P.HIGH,
            QUIET_NY,
            False,
            T.NEW_MESSAGE,
            Action.SEND_QUIETLY,
            "quiet_hours",
        ),
        (pref(quiet=Q.QUIET), P.HIGH, NO_QUIET, False, T.NEW_MESSAGE, Action.SEND, None),
        (pref(quiet=Q.QUIET), P.CRITICAL, QUIET_NY, False, T.NEW_MESSAGE, Action.SEND, None),
        (
            pref(quiet=Q.QUIET, push=False),
            P.HIGH,
            QUIET_NY,
            False,
            T.NEW_MESSAGE,
            Action.SUPPRESS,
            "setting_disabled",
        ),
        (
            pref(push=False),
            P.HIGH,
            QUIET_NY,
            False,
            T.NEW_MESSAGE,
            Action.SUPPRESS,
            "setting_disabled",
        ),
    ],
)
def test_rules_apply_in_order(preference, priority, quiet, active, kind, action, reason):
    verdict = before_send(
        user_id="alice",
        notification_type=kind,
        priority=priority,
        preference=preference,
        quiet=quiet,
        user_active_in_app=active,
        now=NOW,
        spread_seconds=600,
    )
    assert (verdict.action, verdict.reason) == (action, reason)
    if action is Action.DEFER:
        window_end = datetime(2026, 1, 15, 13, 0, tzinfo=UTC)
        assert window_end <= verdict.until < window_end + timedelta(minutes=10)


def test_cap_windows_follow_the_users_local_day():
    tokyo = cap_windows(datetime(2026, 1, 15, 16, 30, tzinfo=UTC), "Asia/Tokyo")  # 01:30 Jan 16
    new_york = cap_windows(datetime(2026, 1, 15, 16, 30, tzinfo=UTC), "America/New_York")
    assert tokyo.day_key == "2026-01-16"
    assert tokyo.day_resets_at == datetime(2026, 1, 16, 15, 0, tzinfo=UTC)
    assert new_york.day_key == "2026-01-15"
    assert new_york.day_resets_at == datetime(2026, 1, 16, 5, 0, tzinfo=UTC)
    assert tokyo.hour_resets_at == datetime(2026, 1, 15, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("priority", "counts", "action"),
    [
        (P.CRITICAL, False, OverCap.DEFER),
        (P.HIGH, True, OverCap.DEFER),
        (P.NORMAL, True, OverCap.DEFER),
        (P.LOW, True, OverCap.SUPPRESS),
    ],
)
def test_what_a_cap_does_by_priority(priority, counts, action):
    assert counts_against_caps(T.LIKE_RECEIVED, priority) is counts
    assert over_cap(priority) is action


@pytest.mark.parametrize(
    ("kind", "counts"),
    [
        (T.NEW_MESSAGE, False),
        (T.NEW_MATCH, False),
        (T.CONVERSATION_STARTED, False),
        (T.MATCH_EXPIRING, False),
        (T.SYSTEM, False),
        (T.LIKE_RECEIVED, True),
        (T.SUPER_LIKE_RECEIVED, True),
        (T.PROFILE_VIEW, True),
        (T.BOOST_ACTIVATED, True),
        (T.MARKETING, True),
    ],
)
def test_conversations_and_matches_are_never_capped_likes_and_views_are(kind, counts):
    assert counts_against_caps(kind, P.HIGH) is counts


@pytest.mark.parametrize(
    ("kind", "priority", "data", "key"),
    [
        (T.NEW_MESSAGE, P.HIGH, {"conversation_id": "c1"}, "new_message:alice:c1"),
        (T.NEW_MESSAGE, P.HIGH, {}, None),
        (T.NEW_MESSAGE, P.CRITICAL, {"conversation_id": "c1"}, None),
        (T.LIKE_RECEIVED, P.NORMAL, {"liker": "x"}, "like_received:alice"),
        (T.NEW_MATCH, P.HIGH, {"match_id": "m"}, None),
        (T.SYSTEM, P.HIGH, {}, None),
    ],
)
def test_batch_keys(kind, priority, data, key):
    assert batch_key("alice", kind, priority, data) == key


def test_long_batch_keys_are_hashed_to_fit_a_collapse_id():
    key = batch_key("u" * 64, T.NEW_MESSAGE, P.HIGH, {"conversation_id": "c" * 64})
    assert len(key.encode()) <= 64 and key.startswith("new_message:")
    assert is_summary({"batch_count": 3}) and not is_summary({})


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<b>Hi</b> there", "Hi there"),
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("line\nbreak\ttab\x07bell", "line break tab bell"),
        ("right\u202eto-left", "rightto-left"),
        ("  spaced   out  ", "spaced out"),
        ("emoji 👩‍💻 stays", "emoji 👩‍💻 stays"),
    ],
)
def test_text_is_cleaned(raw, clean):
    assert clean_title(raw) == clean


def test_lengths_are_capped_in_bytes_on_a_character_boundary():
    assert len(clean_title("é" * 500).encode()) <= 200
    assert clean_body("🙂" * 500).endswith("…")
    assert len(clean_body("🙂" * 500).encode()) <= 800
    assert cap_bytes("short", 10) == "short"
