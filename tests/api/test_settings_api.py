"""Reading and changing notification settings and quiet hours through the HTTP API."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from core.catalog import TYPE_DEFAULTS, NotificationType
from models import User, UserNotificationSetting

URL = "/api/v1/notifications/settings"


def by_type(response):
    return {item["notification_type"]: item for item in response.json["data"]["settings"]}


def test_settings_list_every_type_with_defaults_in_the_seeds_shape(client, auth_header):
    response = client.get(URL, headers=auth_header("alice"))

    assert response.status_code == 200
    assert list(response.json) == ["success", "data"]
    data = response.json["data"]
    assert set(data) == {"settings", "quiet_hours", "privacy"}
    assert data["privacy"] == {"presence_visibility": "matches", "show_previews": True}
    assert [item["notification_type"] for item in data["settings"]] == [
        t.value for t in NotificationType
    ]
    assert data["settings"][0] == {
        "notification_type": "new_match",
        "is_enabled": True,
        "push_enabled": True,
        "email_enabled": False,
        "quiet_hours_behavior": "quiet",
    }
    assert data["quiet_hours"] == {
        "start": "22:00",
        "end": "08:00",
        "timezone": "UTC",
        "timezone_source": "default",
    }


def test_marketing_is_opt_in(client, auth_header):
    marketing = by_type(client.get(URL, headers=auth_header("alice")))["marketing"]
    assert marketing["is_enabled"] is False and marketing["push_enabled"] is False
    assert TYPE_DEFAULTS[NotificationType.MARKETING].is_enabled is False


def test_a_partial_update_changes_only_what_is_given(client, auth_header):
    response = client.put(
        URL,
        json={"settings": [{"notification_type": "like_received", "push_enabled": False}]},
        headers=auth_header("alice"),
    )

    assert response.status_code == 200
    settings = by_type(response)
    assert settings["like_received"] == {
        "notification_type": "like_received",
        "is_enabled": True,
        "push_enabled": False,
        "email_enabled": False,
        "quiet_hours_behavior": "defer",
    }
    assert settings["new_match"]["push_enabled"] is True
    assert (
        by_type(client.get(URL, headers=auth_header("alice")))["like_received"]["push_enabled"]
        is False
    )


def test_a_second_update_keeps_the_first(client, auth_header):
    headers = auth_header("alice")
    client.put(
        URL,
        json={"settings": [{"notification_type": "marketing", "is_enabled": True}]},
        headers=headers,
    )
    client.put(
        URL,
        json={"settings": [{"notification_type": "marketing", "push_enabled": True}]},
        headers=headers,
    )

    marketing = by_type(client.get(URL, headers=headers))["marketing"]
    assert marketing["is_enabled"] is True and marketing["push_enabled"] is True


def test_quiet_hours_change_partially_and_keep_the_effective_other_end(client, auth_header):
    headers = auth_header("alice")
    first = client.put(URL, json={"quiet_hours": {"start": "23:30"}}, headers=headers)
    second = client.put(URL, json={"quiet_hours": {"timezone": "Asia/Kathmandu"}}, headers=headers)

    assert first.json["data"]["quiet_hours"] == {
        "start": "23:30",
        "end": "08:00",
        "timezone": "UTC",
        "timezone_source": "default",
    }
    assert second.json["data"]["quiet_hours"] == {
        "start": "23:30",
        "end": "08:00",
        "timezone": "Asia/Kathmandu",
        "timezone_source": "explicit",
    }


def test_start_equal_to_end_is_kept_as_no_quiet_hours(client, auth_header):
    response = client.put(
        URL, json={"quiet_hours": {"start": "00:00", "end": "00:00"}}, headers=auth_header("alice")
    )
    assert (
        response.json["data"]["quiet_hours"]["start"] == response.json["data"]["quiet_hours"]["end"]
    )


@pytest.mark.parametrize(
    ("quiet_hours", "field"),
    [
        ({"start": "24:00"}, "start"),
        ({"end": "7:00"}, "end"),
        ({"start": "22:00:00"}, "start"),
        ({"start": 2200}, "start"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"timezone": 5}, "timezone"),
    ],
)
def test_bad_quiet_hours_are_refused_naming_the_field(
    client, auth_header, db_session, quiet_hours, field
):
    response = client.put(URL, json={"quiet_hours": quiet_hours}, headers=auth_header("alice"))

    assert response.status_code == 422
    assert field in response.json["error"]["details"]["fields"]["quiet_hours"]
    user = db_session.get(User, "alice")
    assert (user.quiet_hours_start, user.timezone) == (None, None)


def test_an_unknown_type_is_a_400_naming_it_and_changes_nothing(client, auth_header, db_session):
    response = client.put(
        URL,
        json={
            "settings": [
                {"notification_type": "new_match", "push_enabled": False},
                {"notification_type": "carrier_pigeon", "push_enabled": False},
            ],
            "quiet_hours": {"start": "21:00"},
        },
        headers=auth_header("alice"),
    )

    assert response.status_code == 400
    assert response.json["error"]["code"] == "unknown_notification_type"
    assert "carrier_pigeon" in response.json["error"]["message"]
    assert db_session.scalar(select(func.count()).select_from(UserNotificationSetting)) == 0
    assert db_session.get(User, "alice").quiet_hours_start is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"settings": []},
        {"settings": [{"notification_type": "new_match", "push_enabled": "no"}]},
        {"settings": [{"notification_type": "new_match", "push_enabled": 0}]},
        {"settings": [{"notification_type": "new_match"}, {"notification_type": "new_match"}]},
        {"settings": {"new_match": False}},
    ],
)
def test_malformed_changes_are_422(client, auth_header, body):
    response = client.put(URL, json=body, headers=auth_header("alice"))
    assert response.status_code == 422
    assert response.json["error"]["details"]["fields"]


def test_one_users_settings_never_touch_anothers(client, auth_header):
    client.put(
        URL,
        json={
            "settings": [{"notification_type": "new_match", "is_enabled": False}],
            "quiet_hours": {"timezone": "Europe/London"},
        },
        headers=auth_header("alice"),
    )

    bob = client.get(URL, headers=auth_header("bob")).json["data"]
    assert (
        by_type(client.get(URL, headers=auth_header("alice")))["new_match"]["is_enabled"] is False
    )
    assert bob["settings"][0]["is_enabled"] is True
    assert bob["quiet_hours"]["timezone"] == "UTC"


def test_each_type_has_a_quiet_hours_behavior_the_user_can_change(client, auth_header):
    headers = auth_header("alice")
    before = by_type(client.get(URL, headers=headers))
    assert before["new_message"]["quiet_hours_behavior"] == "quiet"
    assert before["like_received"]["quiet_hours_behavior"] == "defer"

    changed = client.put(
        URL,
        json={
            "settings": [
                {"notification_type": "new_message", "quiet_hours_behavior": "defer"},
                {"notification_type": "like_received", "quiet_hours_behavior": "quiet"},
            ]
        },
        headers=headers,
    )

    assert changed.status_code == 200, changed.json
    after = by_type(client.get(URL, headers=headers))
    assert after["new_message"]["quiet_hours_behavior"] == "defer"
    assert after["like_received"]["quiet_hours_behavior"] == "quiet"
    assert after["new_message"]["push_enabled"] is True  # the other columns keep their value


def test_a_bad_quiet_hours_behavior_is_a_422_naming_it(client, auth_header):
    response = client.put(
        URL,
        json={"settings": [{"notification_type": "new_message", "quiet_hours_behavior": "mute"}]},
        headers=auth_header("alice"),
    )
    assert response.status_code == 422
    assert "quiet_hours_behavior" in str(response.json["error"]["details"]["fields"])


def test_previews_can_be_turned_off_and_on_in_privacy(client, auth_header, db_session):
    headers = auth_header("alice")
    off = client.put(URL, json={"privacy": {"show_previews": False}}, headers=headers)
    assert off.json["data"]["privacy"] == {"presence_visibility": "matches", "show_previews": False}
    assert db_session.get(User, "alice").show_previews is False

    both = client.put(
        URL,
        json={"privacy": {"show_previews": True, "presence_visibility": "nobody"}},
        headers=headers,
    )
    assert both.json["data"]["privacy"] == {"presence_visibility": "nobody", "show_previews": True}


def test_an_empty_privacy_change_is_a_422(client, auth_header):
    response = client.put(URL, json={"privacy": {}}, headers=auth_header("alice"))
    assert response.status_code == 422


def test_a_null_timezone_forgets_the_chosen_zone_and_follows_the_device(
    client, auth_header, db_session
):
    headers = auth_header("alice")
    client.put(URL, json={"quiet_hours": {"timezone": "Asia/Tokyo"}}, headers=headers)
    db_session.execute(
        update(User).where(User.id == "alice").values(device_timezone="America/Chicago")
    )
    db_session.commit()
    chosen = client.get(URL, headers=headers).json["data"]["quiet_hours"]
    assert (chosen["timezone"], chosen["timezone_source"]) == ("Asia/Tokyo", "explicit")

    forgotten = client.put(URL, json={"quiet_hours": {"timezone": None}}, headers=headers)

    zone = forgotten.json["data"]["quiet_hours"]
    assert (zone["timezone"], zone["timezone_source"]) == ("America/Chicago", "device")


def test_a_user_never_heard_from_uses_the_deployments_default_zone(
    make_app_client, auth_header
):
    client = make_app_client(DEFAULT_TIMEZONE="Europe/Berlin")
    zone = client.get(URL, headers=auth_header("alice")).json["data"]["quiet_hours"]
    assert (zone["timezone"], zone["timezone_source"]) == ("Europe/Berlin", "default")


def test_the_deployment_can_make_presence_visible_to_everyone_by_default(
    make_app_client, auth_header
):
    client = make_app_client(PRESENCE_VISIBILITY_DEFAULT="everyone")
    privacy = client.get(URL, headers=auth_header("alice")).json["data"]["privacy"]
    assert privacy["presence_visibility"] == "everyone"
