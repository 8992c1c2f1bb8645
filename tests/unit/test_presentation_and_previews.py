"""Tables for how a push presents itself (core/presentation.py), what a private preview says
(core/previews.py, core/templates.py `PRIVATE_TEXTS`), and how each provider puts these on
the wire (the pure builders of providers/apns.py, fcm.py, expo.py and app_data.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.catalog import (
    TYPE_DEFAULTS,
    Action,
    AndroidChannel,
    InterruptionLevel,
    NotificationType,
    Priority,
)
from core.presentation import presentation, with_action
from core.previews import PRIVATE_TYPES, Content, batch_count, content, ids_only, is_private
from core.templates import PRIVATE_SUMMARIES, PRIVATE_TEXTS, render_private
from providers.apns import MAX_PAYLOAD_BYTES, build_payload, build_request, payload_bytes
from providers.app_data import with_app_copy
from providers.expo import build_message
from providers.fcm import android_config, message_data
from tests.factories import apns_token, expo_token, fcm_token, push

T = NotificationType

# --- presentation per type -------------------------------------------------------------

PER_TYPE = [
    # type, channel, interruption level, action
    (T.NEW_MATCH, "matches", "time-sensitive", "open_match"),
    (T.NEW_MESSAGE, "messages", "active", "open_conversation"),
    (T.SUPER_LIKE_RECEIVED, "likes", "active", "open_super_likes"),
    (T.LIKE_RECEIVED, "likes", "active", "open_likes"),
    (T.MATCH_EXPIRING, "matches", "active", "open_match"),
    (T.CONVERSATION_STARTED, "messages", "active", "open_conversation"),
    (T.BOOST_ACTIVATED, "activity", "active", "open_boost"),
    (T.PROFILE_VIEW, "activity", "active", "open_profile_views"),
    (T.SYSTEM, "account", "active", "open_app"),
    (T.MARKETING, "promotions", "active", "open_app"),
]


def test_the_table_covers_every_type():
    assert {row[0] for row in PER_TYPE} == set(NotificationType)


@pytest.mark.parametrize(("kind", "channel", "level", "action"), PER_TYPE)
def test_each_type_has_its_channel_level_sound_and_action(kind, channel, level, action):
    shown = presentation(kind, quiet=False)
    assert (shown.channel.value, shown.interruption_level.value) == (channel, level)
    assert (shown.sound, shown.quiet) == ("default", False)
    assert with_action(kind, {"match_id": "m-1"}) == {"match_id": "m-1", "action": action}


@pytest.mark.parametrize("kind", list(NotificationType))
def test_delivered_quietly_every_type_is_passive_silent_and_on_the_quiet_channel(kind):
    shown = presentation(kind, quiet=True)
    assert shown.channel is AndroidChannel.QUIET
    assert shown.interruption_level is InterruptionLevel.PASSIVE
    assert (shown.sound, shown.quiet) == (None, True)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"action": "open_likes"}, "open_likes"),  # the sender's own wins
        ({"action": ""}, Action.OPEN_CONVERSATION.value),  # empty: the catalogue's
        ({"action": None}, Action.OPEN_CONVERSATION.value),
        ({}, Action.OPEN_CONVERSATION.value),
    ],
)
def test_the_senders_action_wins_else_the_catalogues(data, expected):
    assert with_action(T.NEW_MESSAGE, data)["action"] == expected


# --- private previews -------------------------------------------------------------------

PRIVATE = [
    # type, locale, count, title, body
    (T.NEW_MESSAGE, "en", 1, "New message", "You have a new message."),
    (T.NEW_MESSAGE, "en-GB", 3, "New messages", "You have 3 new messages."),
    (T.NEW_MESSAGE, "es", 1, "Nuevo mensaje", "Tienes un mensaje nuevo."),
    (T.NEW_MESSAGE, "es-MX", 4, "Mensajes nuevos", "Tienes 4 mensajes nuevos."),
    (T.NEW_MESSAGE, "fr", 1, "New message", "You have a new message."),  # no French: English
    (T.CONVERSATION_STARTED, "en", 1, "New message", "You have a new message."),
    (T.CONVERSATION_STARTED, "es", 1, "Nuevo mensaje", "Tienes un mensaje nuevo."),
    (T.NEW_MATCH, "en", 1, "New match", "You have a new match!"),
    (T.NEW_MATCH, "es", 1, "Nuevo match", "¡Tienes un match nuevo!"),
    (T.MATCH_EXPIRING, "en", 1, "Match expiring", "One of your matches expires soon."),
    (T.MATCH_EXPIRING, "en", 2, "Match expiring", "One of your matches expires soon."),
    (T.MATCH_EXPIRING, "es", 1, "Un match caduca pronto", "Uno de tus matches caduca pronto."),
]


@pytest.mark.parametrize(("kind", "locale", "count", "title", "body"), PRIVATE)
def test_a_private_preview_says_only_the_generic_text(kind, locale, count, title, body):
    text = render_private(kind, locale, count)
    assert (text.title, text.body) == (title, body)


def test_every_private_type_has_a_generic_text_in_english_and_spanish():
    expected = {T.NEW_MESSAGE, T.NEW_MATCH, T.CONVERSATION_STARTED, T.MATCH_EXPIRING}
    assert expected == PRIVATE_TYPES
    for locale in ("en", "es"):
        assert set(PRIVATE_TEXTS[locale]) == PRIVATE_TYPES
        assert set(PRIVATE_SUMMARIES[locale]) <= PRIVATE_TYPES
    assert render_private(T.LIKE_RECEIVED, "en") is None


SENT = {
    "conversation_id": "c-1",
    "match_id": "m-1",
    "sender_id": 42,
    "sender_name": "Alex",
    "match_name": "Sam",
    "message_preview": "See you at 8?",
    "mood": "flirty",
    "photo_id": {"url": "https://example.com/alex.jpg"},  # not a plain value: dropped
    "type": "new_message",
    "notification_id": "n-1",
    "action": "open_conversation",
}


def test_ids_only_keeps_the_ids_type_notification_id_action_and_count():
    assert ids_only({**SENT, "batch_count": 3}) == {
        "conversation_id": "c-1",
        "match_id": "m-1",
        "sender_id": 42,
        "type": "new_message",
        "notification_id": "n-1",
        "action": "open_conversation",
        "batch_count": 3,
    }


@pytest.mark.parametrize(
    ("kind", "show_previews", "private"),
    [(kind, show, kind in PRIVATE_TYPES and not show) for kind in T for show in (True, False)],
)
def test_only_message_and_match_pushes_of_users_without_previews_are_private(
    kind, show_previews, private
):
    assert is_private(kind, show_previews) is private


def test_private_content_drops_the_senders_title_body_and_free_text():
    said = content(
        T.NEW_MESSAGE,
        "Alex: see you at 8?",
        "Bring the tickets",
        SENT,
        show_previews=False,
        locale="es-ES",
    )
    assert said == Content("Nuevo mensaje", "Tienes un mensaje nuevo.", ids_only(SENT))
    assert "Alex" not in json.dumps(said.data) and "8?" not in json.dumps(said.data)


def test_a_private_summary_says_how_many_and_nothing_else():
    said = content(
        T.NEW_MESSAGE,
        "3 new messages from Alex",
        "Open the app to read them.",
        {**SENT, "batch_count": 3},
        show_previews=False,
        locale=None,
    )
    assert (said.title, said.body) == ("New messages", "You have 3 new messages.")


@pytest.mark.parametrize(
    ("kind", "show_previews"),
    [(T.NEW_MESSAGE, True), (T.LIKE_RECEIVED, False), (T.SYSTEM, False)],
)
def test_content_is_unchanged_when_not_private(kind, show_previews):
    said = content(kind, "Title", "Body", SENT, show_previews=show_previews, locale="es")
    assert said == Content("Title", "Body", SENT)


@pytest.mark.parametrize(
    ("data", "count"),
    [({}, 1), ({"batch_count": 5}, 5), ({"batch_count": "2"}, 2), ({"batch_count": "x"}, 1)],
)
def test_batch_count(data, count):
    assert batch_count(data) == count


# --- the providers' wire shape ----------------------------------------------------------


def quiet_push(token, **fields):
    values = {"sound": None, "channel": "quiet", "interruption_level": "passive", "quiet": True}
    return push(token, **{**values, **fields})


def loud_push(token, **fields):
    return push(token, channel="matches", interruption_level="time-sensitive", **fields)


def test_apns_carries_the_level_and_thread_and_a_quiet_push_has_no_sound():
    loud = build_payload(loud_push(apns_token(1), thread_id="c-1"))
    quiet = build_payload(quiet_push(apns_token(1), sound="default"))  # quiet wins over sound

    assert loud["aps"]["interruption-level"] == "time-sensitive"
    assert (loud["aps"]["sound"], loud["aps"]["thread-id"]) == ("default", "c-1")
    assert quiet["aps"]["interruption-level"] == "passive" and "sound" not in quiet["aps"]
    assert build_request(quiet_push(apns_token(1))).priority == 5  # high, but quiet
    assert build_request(loud_push(apns_token(1))).priority == 10


def test_apns_data_is_at_the_top_for_native_apps_and_under_body_for_expo_apps():
    payload = build_payload(push(apns_token(1), data={"match_id": "m-1", "type": "new_match"}))

    assert payload["match_id"] == "m-1" and payload["type"] == "new_match"
    assert payload["body"] == {"match_id": "m-1", "type": "new_match"}


def test_apns_keeps_only_the_ids_in_the_copy_when_both_would_not_fit_4_kb():
    data = {"match_id": "m-1", "type": "system", "note": "é" * 1150}  # 2.3 KB of JSON
    message = push(apns_token(1), title="t" * 200, body="b" * 800, data=data)

    full = build_payload(message)
    request = build_request(message)

    assert payload_bytes(full) > MAX_PAYLOAD_BYTES
    assert request.message["note"] == data["note"]  # the native keys stay whole
    assert request.message["body"] == {"match_id": "m-1", "type": "system"}
    assert payload_bytes(request.message) <= MAX_PAYLOAD_BYTES


@pytest.mark.parametrize("reserved", ["aps", "body"])
def test_apns_refuses_data_that_uses_a_reserved_key(reserved):
    with pytest.raises(ValueError):
        build_payload(push(apns_token(1), data={reserved: "x"}))


def test_fcm_android_block_names_the_channel_and_a_quiet_push_is_silent_and_normal():
    loud = android_config(loud_push(fcm_token(1), thread_id="c-1"))
    quiet = android_config(quiet_push(fcm_token(1), thread_id="c-1"))

    assert loud == {
        "priority": "high",
        "notification": {"channel_id": "matches", "tag": "c-1", "sound": "default"},
    }
    assert quiet == {
        "priority": "normal",
        "notification": {
            "channel_id": "quiet",
            "tag": "c-1",
            "default_sound": False,
            "default_vibrate_timings": False,
            "default_light_settings": False,
            "notification_priority": "PRIORITY_LOW",
        },
    }


def test_fcm_data_carries_the_keys_and_their_copy_as_one_json_string_under_body():
    data = message_data(push(fcm_token(1), data={"match_id": "m-1", "count": 2}))

    assert data["match_id"] == "m-1" and data["count"] == "2"
    assert json.loads(data["body"]) == {"match_id": "m-1", "count": 2}
    compact = message_data(push(fcm_token(1), data={"x": "y"}), compact_copy=True)
    assert json.loads(compact["body"]) == {}  # no id in it


def test_expo_carries_channel_and_level_and_a_quiet_push_no_sound_at_normal_priority():
    loud = build_message(loud_push(expo_token(1)))
    quiet = build_message(quiet_push(expo_token(1), sound="default"))

    assert (loud["channelId"], loud["interruptionLevel"]) == ("matches", "time-sensitive")
    assert (loud["sound"], loud["priority"]) == ("default", "high")
    assert (quiet["channelId"], quiet["interruptionLevel"]) == ("quiet", "passive")
    assert "sound" not in quiet and quiet["priority"] == "normal"
    assert "body" not in quiet["data"]  # Expo's own service makes the copy


def test_the_app_copy_refuses_a_data_key_named_body():
    with pytest.raises(ValueError, match="ReservedDataKey"):
        with_app_copy({"body": "hello"})


def test_a_quiet_push_is_never_urgent():
    assert push(apns_token(1), priority=Priority.HIGH).is_urgent
    assert not quiet_push(apns_token(1), priority=Priority.HIGH).is_urgent


def test_the_catalogue_names_a_channel_level_and_action_for_every_type():
    for kind, defaults in TYPE_DEFAULTS.items():
        assert defaults.channel is not AndroidChannel.QUIET, kind  # quiet is for quiet hours
        assert defaults.interruption is not InterruptionLevel.PASSIVE, kind


def test_the_notification_types_document_says_what_the_catalogue_says():
    doc = Path(__file__).resolve().parents[2] / "docs" / "notification-types.md"
    rows = {}
    for line in doc.read_text().splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        if line.startswith("| `") and cells[0] in {t.value for t in NotificationType}:
            rows[NotificationType(cells[0])] = cells
    assert set(rows) == set(NotificationType)
    for kind, defaults in TYPE_DEFAULTS.items():
        channel, level, quiet_hours, caps, action = rows[kind][5:10]
        assert (channel, level, quiet_hours, caps, action) == (
            defaults.channel.value,
            defaults.interruption.value,
            defaults.quiet_hours.value,
            defaults.caps.value,
            defaults.action.value,
        ), kind
