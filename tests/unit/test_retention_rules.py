"""The retention settings and the one place their cut-offs are computed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet

from core.catalog import NotificationStatus
from core.config import ConfigError, load_settings
from core.retention import FINISHED_STATUSES, cutoffs

GOOD = {
    "DATABASE_URL": "postgresql://u@h/db",
    "REDIS_URL": "redis://h:6379/0",
    "JWT_SECRET": "s" * 32,
    "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "TOKEN_HASH_KEY": "h" * 16,
}
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_retention_defaults():
    retention = load_settings(GOOD).retention
    assert (
        retention.notification_days,
        retention.realtime_events_days,
        retention.activity_days,
        retention.token_stale_days,
    ) == (90, 7, 30, 270)


def test_retention_variables_are_read_into_their_group():
    retention = load_settings(
        {
            **GOOD,
            "NOTIFICATION_RETENTION_DAYS": "30",
            "REALTIME_EVENTS_RETENTION_DAYS": "2",
            "ACTIVITY_RETENTION_DAYS": "14",
            "TOKEN_STALE_DAYS": "60",
        }
    ).retention
    limits = cutoffs(retention, NOW)
    assert limits.notifications == NOW - timedelta(days=30)
    assert limits.realtime_events == NOW - timedelta(days=2)
    assert limits.activity == NOW - timedelta(days=14)
    assert limits.token_stale == NOW - timedelta(days=60)


@pytest.mark.parametrize(
    "name",
    [
        "NOTIFICATION_RETENTION_DAYS",
        "REALTIME_EVENTS_RETENTION_DAYS",
        "ACTIVITY_RETENTION_DAYS",
        "TOKEN_STALE_DAYS",
    ],
)
@pytest.mark.parametrize("value", ["0", "ninety"])
def test_a_bad_retention_value_is_named(name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings({**GOOD, name: value})


def test_the_rollups_gate_holds_back_what_they_read_and_nothing_else():
    retention = load_settings(GOOD).retention
    rolled_up_through = NOW - timedelta(days=120)  # the rollups lag behind by a month

    gated = cutoffs(retention, NOW, rolled_up_through=rolled_up_through)
    free = cutoffs(retention, NOW)

    assert gated.notifications == rolled_up_through  # never past what was counted
    assert gated.activity == rolled_up_through
    assert gated.realtime_events == free.realtime_events
    assert gated.token_stale == free.token_stale
    # Rollups ahead of the retention change nothing.
    assert cutoffs(retention, NOW, rolled_up_through=NOW) == free


def test_only_finished_statuses_may_be_removed():
    waiting = {NotificationStatus.PENDING, NotificationStatus.SCHEDULED}
    assert set(FINISHED_STATUSES) == set(NotificationStatus) - waiting - {
        NotificationStatus.PROCESSING
    }
