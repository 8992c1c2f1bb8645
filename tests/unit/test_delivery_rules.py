"""Pure delivery rules: retry backoff, a notification's status after an attempt, templates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.catalog import NotificationStatus, NotificationType
from core.delivery_outcome import AttemptCounts, decide
from core.retry import RetryPolicy
from core.templates import MissingText, render

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=5, base_seconds=2, cap_seconds=600)


@pytest.mark.parametrize(
    ("attempts", "jitter", "retry_after", "seconds"),
    [
        (1, 0.5, None, 1),  # window 2 s, half of it, but never under a second
        (2, 0.5, None, 2),  # window 4 s
        (3, 0.99, None, 7.92),  # window 8 s
        (4, 0.0, None, 1),  # full jitter can be short
        (4, 0.5, 120, 120),  # Retry-After wins when longer
        (4, 1.0, None, 16),
        (20, 1.0, None, 600),  # the window is capped
    ],
)
def test_backoff_grows_exponentially_with_jitter_and_honours_retry_after(
    attempts, jitter, retry_after, seconds
):
    policy = RetryPolicy(max_attempts=50, base_seconds=2, cap_seconds=600)
    assert policy.next_attempt_at(attempts, NOW, jitter, retry_after) == NOW + timedelta(
        seconds=seconds
    )


def test_no_retry_once_the_attempts_are_used_up():
    assert POLICY.next_attempt_at(5, NOW, 0.5) is None
    assert POLICY.next_attempt_at(4, NOW, 0.5) is not None


def test_a_retry_after_longer_than_the_cap_is_still_honoured():
    assert POLICY.next_attempt_at(1, NOW, 0.1, retry_after=3600) == NOW + timedelta(hours=1)


@pytest.mark.parametrize(
    ("counts", "attempts", "status", "reason"),
    [
        (AttemptCounts(0, 0, 0, 0), 1, NotificationStatus.SUPPRESSED, "no_active_token"),
        (AttemptCounts(0, 3, 0, 0), 1, NotificationStatus.SENT, None),
        (AttemptCounts(2, 1, 0, 0), 2, NotificationStatus.SENT, None),
        (AttemptCounts(0, 2, 0, 1), 1, NotificationStatus.PARTIALLY_SENT, None),
        (AttemptCounts(0, 0, 0, 2), 1, NotificationStatus.FAILED, None),
        (AttemptCounts(0, 2, 1, 0), 1, NotificationStatus.SCHEDULED, "retrying"),
        (AttemptCounts(0, 0, 1, 0), 5, NotificationStatus.FAILED, None),
        (AttemptCounts(1, 0, 1, 0), 5, NotificationStatus.PARTIALLY_SENT, None),
    ],
)
def test_the_status_after_an_attempt(counts, attempts, status, reason):
    decision = decide(counts, attempts, POLICY, NOW, 0.5)
    assert (decision.status, decision.reason) == (status, reason)
    assert (decision.retry_at is not None) == (status is NotificationStatus.SCHEDULED)


@pytest.mark.parametrize(
    ("notification_type", "data", "title", "body"),
    [
        (
            NotificationType.NEW_MATCH,
            {"match_name": "Sarah"},
            "It's a Match! 💕",
            "You and Sarah both liked each other!",
        ),
        (NotificationType.NEW_MATCH, {}, "It's a Match! 💕", "Someone you liked likes you back!"),
        (
            NotificationType.NEW_MESSAGE,
            {"sender_name": "Alex", "message_preview": "Hey!"},
            "New message from Alex",
            "Hey!",
        ),
        (
            NotificationType.NEW_MESSAGE,
            {"sender_name": "Alex"},
            "New message from Alex",
            "Open the app to read it.",
        ),
        (
            NotificationType.NEW_MESSAGE,
            {"sender_name": ""},
            "New message",
            "You have a new message.",
        ),
        (
            NotificationType.SUPER_LIKE_RECEIVED,
            {},
            "You received a Super Like! ⭐",
            "Someone really likes your profile!",
        ),
    ],
)
def test_templates_use_the_most_personal_variant_the_data_allows(
    notification_type, data, title, body
):
    text = render(notification_type, data)
    assert (text.title, text.body) == (title, body)


def test_the_senders_own_text_wins_and_unknown_locales_fall_back_to_english():
    assert render(NotificationType.NEW_MATCH, {}, "pt-BR").title == "It's a Match! 💕"
    assert render(NotificationType.NEW_MATCH, {}, title="Hi", body="There").body == "There"
    assert (
        render(NotificationType.NEW_MATCH, {}, title="Custom").body
        == "Someone you liked likes you back!"
    )


@pytest.mark.parametrize("notification_type", [NotificationType.SYSTEM, NotificationType.MARKETING])
def test_system_and_marketing_need_the_senders_text(notification_type):
    with pytest.raises(MissingText):
        render(notification_type, {})
