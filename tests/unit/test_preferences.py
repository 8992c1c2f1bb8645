"""Effective preferences: stored overrides over the catalogue's defaults (pure, no I/O)."""

from __future__ import annotations

from datetime import time

import pytest

from core.catalog import TYPE_DEFAULTS, NotificationType
from core.preferences import effective_preferences, effective_quiet_hours


def test_with_nothing_stored_every_type_has_its_defaults_in_catalogue_order():
    preferences = effective_preferences({})
    assert [p.notification_type for p in preferences] == list(NotificationType)
    for preference in preferences:
        defaults = TYPE_DEFAULTS[preference.notification_type]
        assert (preference.is_enabled, preference.push_enabled) == (
            defaults.is_enabled,
            defaults.push_enabled,
        )


@pytest.mark.parametrize(
    ("stored", "is_enabled", "push_enabled", "allows_push"),
    [
        ({}, True, True, True),
        ({"push_enabled": False}, True, False, False),
        ({"is_enabled": False}, False, True, False),
        ({"is_enabled": False, "push_enabled": False}, False, False, False),
    ],
)
def test_stored_flags_override_only_themselves(stored, is_enabled, push_enabled, allows_push):
    [match] = [
        p
        for p in effective_preferences({NotificationType.NEW_MATCH: stored})
        if p.notification_type is NotificationType.NEW_MATCH
    ]
    assert (match.is_enabled, match.push_enabled, match.allows_push) == (
        is_enabled,
        push_enabled,
        allows_push,
    )


@pytest.mark.parametrize(
    ("start", "end", "expected", "off"),
    [
        (None, None, (time(22), time(8)), False),
        (time(23), time(7), (time(23), time(7)), False),
        (time(0), time(0), (time(0), time(0)), True),
        (time(23), None, (time(22), time(8)), False),
    ],
)
def test_quiet_hours_fall_back_to_the_deployment_default(start, end, expected, off):
    quiet = effective_quiet_hours(start, end, "Europe/London", time(22), time(8))
    assert (quiet.start, quiet.end) == expected
    assert quiet.timezone == "Europe/London"
    assert quiet.is_off is off
