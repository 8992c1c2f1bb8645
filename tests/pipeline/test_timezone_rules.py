"""The device's zone and locale in delivery, end to end (API -> worker -> stand-ins): quiet
hours run in the zone the device reported (a zone chosen in the settings wins, and a user
never heard from gets DEFAULT_TIMEZONE), and the device's locale chooses the templates.

The zones are picked from the current UTC time, so that these tests hold at any hour: a
fixed-offset Etc/GMT zone where it is now the middle of the night (inside the default
22:00-08:00 window with hours to spare) and one where it is the middle of the day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.catalog import Role
from tests.pipeline.conftest import EXPO_DEVICE

DEFAULT_WINDOW = {"QUIET_HOURS_DEFAULT_START": "22:00", "QUIET_HOURS_DEFAULT_END": "08:00"}
NIGHT_HOURS = range(1, 6)  # 01:00-05:59: inside 22:00-08:00, two hours from either edge
DAY_HOURS = range(11, 16)


def etc_zone(offset_hours: int) -> str:
    """The fixed-offset zone UTC+offset (POSIX signs: Etc/GMT-9 is UTC+9)."""
    if offset_hours == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if offset_hours > 0 else '+'}{abs(offset_hours)}"


def zone_where_the_hour_is(hours: range, other_than: str | None = None) -> str:
    now = datetime.now(UTC)
    for offset in range(-12, 15):
        name = etc_zone(offset)
        if name != other_than and now.astimezone(ZoneInfo(name)).hour in hours:
            return name
    raise AssertionError(f"no fixed-offset zone has its hour in {hours} now")  # pragma: no cover


def register(pipeline, user_id: str, **fields) -> None:
    response = pipeline.client.post(
        "/api/v1/notifications/register-token",
        json={"token": EXPO_DEVICE, "platform": "ios", **fields},
        headers=pipeline.header(user_id),
    )
    assert response.status_code in (200, 201), response.json


def heartbeat(pipeline, user_id: str, **fields) -> None:
    response = pipeline.client.post(
        "/api/v1/realtime/heartbeat",
        json={"device_id": "phone", **fields},
        headers=pipeline.header(user_id),
    )
    assert response.status_code == 200, response.json


def send_like(pipeline, user_id: str = "alice") -> dict:
    response = pipeline.send(notification_type="like_received", target={"user_ids": [user_id]})
    assert response.status_code == 202, response.json
    pipeline.work()
    return pipeline.notification(response.json["data"]["notification_ids"][0])


def assert_deferred_to_eight_local(found: dict, zone: str) -> None:
    assert (found["status"], found["reason"]) == ("scheduled", "quiet_hours")
    local = datetime.fromisoformat(found["scheduled_for"]).astimezone(ZoneInfo(zone))
    eight = local.replace(hour=8, minute=0, second=0, microsecond=0)
    # The window's end in that zone, plus the per-user spread (QUIET_HOURS_SPREAD_SECONDS).
    assert eight <= local < eight + timedelta(minutes=15), (found["scheduled_for"], zone)


# --- quiet hours follow the device ------------------------------------------------------


def test_a_like_is_deferred_when_the_devices_zone_is_at_night(make_pipeline, expo_standin):
    night = zone_where_the_hour_is(NIGHT_HOURS)
    day = zone_where_the_hour_is(DAY_HOURS)
    pipeline = make_pipeline(**DEFAULT_WINDOW, DEFAULT_TIMEZONE=day)
    register(pipeline, "alice", timezone=night)

    found = send_like(pipeline)

    assert_deferred_to_eight_local(found, night)
    assert expo_standin.messages == []


def test_a_like_is_sent_when_the_devices_zone_is_in_the_day(make_pipeline, expo_standin):
    night = zone_where_the_hour_is(NIGHT_HOURS)
    day = zone_where_the_hour_is(DAY_HOURS)
    pipeline = make_pipeline(**DEFAULT_WINDOW, DEFAULT_TIMEZONE=night)
    register(pipeline, "alice", timezone=day)

    found = send_like(pipeline)

    assert found["status"] == "sent", found
    assert len(expo_standin.messages) == 1


def test_the_most_recent_report_applies_when_the_device_travels(make_pipeline, expo_standin):
    night = zone_where_the_hour_is(NIGHT_HOURS)
    day = zone_where_the_hour_is(DAY_HOURS)
    pipeline = make_pipeline(**DEFAULT_WINDOW)
    register(pipeline, "alice", timezone=day)
    heartbeat(pipeline, "alice", timezone=night)  # landed somewhere it is night

    found = send_like(pipeline)

    assert_deferred_to_eight_local(found, night)
    assert expo_standin.messages == []


def test_a_zone_chosen_in_the_settings_wins_over_the_device(make_pipeline, expo_standin):
    night = zone_where_the_hour_is(NIGHT_HOURS)
    day = zone_where_the_hour_is(DAY_HOURS)
    pipeline = make_pipeline(**DEFAULT_WINDOW)
    register(pipeline, "alice")
    response = pipeline.client.put(
        "/api/v1/notifications/settings",
        json={"quiet_hours": {"timezone": day}},
        headers=pipeline.header("alice"),
    )
    assert response.status_code == 200, response.json
    heartbeat(pipeline, "alice", timezone=night)  # a device report after the choice

    found = send_like(pipeline)

    assert found["status"] == "sent", found
    assert len(expo_standin.messages) == 1


# --- never heard from: DEFAULT_TIMEZONE, counted ----------------------------------------


@pytest.mark.parametrize("hours", [NIGHT_HOURS, DAY_HOURS], ids=["night", "day"])
def test_a_user_never_heard_from_gets_default_timezone_and_is_counted(
    make_pipeline, expo_standin, hours
):
    default = zone_where_the_hour_is(hours)
    pipeline = make_pipeline(**DEFAULT_WINDOW, DEFAULT_TIMEZONE=default)
    register(pipeline, "alice")  # no timezone: Pulse has never heard one

    found = send_like(pipeline)
    counts = pipeline.client.get(
        "/api/v1/notifications/timezones", headers=pipeline.header("matching", Role.SERVICE)
    ).json["data"]

    if hours is NIGHT_HOURS:
        assert_deferred_to_eight_local(found, default)
        assert expo_standin.messages == []
    else:
        assert found["status"] == "sent", found
        assert len(expo_standin.messages) == 1
    # alice, and "ops" (the admin who read the notification): never heard from either.
    assert counts == {
        "users": 2,
        "explicit": 0,
        "device": 0,
        "default": 2,
        "default_timezone": default,
    }


# --- the locale chooses the templates -----------------------------------------------------


def test_a_device_reporting_es_gets_the_spanish_new_match(pipeline, expo_standin):
    register(pipeline, "alice", locale="es")

    response = pipeline.send(
        target={"user_ids": ["alice"]}, data={"match_name": "Sarah", "match_id": "m-1"}
    )
    pipeline.work()

    assert response.status_code == 202, response.json
    [message] = expo_standin.messages
    assert message["title"] == "¡Es un Match! 💕"
    assert "Sarah" in message["body"]


def test_the_language_of_a_regional_locale_chooses_and_others_get_english(pipeline, expo_standin):
    register(pipeline, "alice", locale="es-MX")
    pipeline.client.post(
        "/api/v1/notifications/register-token",
        json={"token": "ExponentPushToken[expo-device-0000000002]", "platform": "android"},
        headers=pipeline.header("bob"),
    )

    pipeline.send(target={"user_ids": ["alice", "bob"]}, data={"match_name": "Sam"})
    pipeline.work()

    titles = {message["to"]: message["title"] for message in expo_standin.messages}
    assert titles == {
        EXPO_DEVICE: "¡Es un Match! 💕",
        "ExponentPushToken[expo-device-0000000002]": "It's a Match! 💕",
    }
