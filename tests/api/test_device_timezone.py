"""The device's time zone and locale (issue #10, point 1): register-token records them, the
most recent device report wins, a zone chosen in the settings wins over every device
report, users never heard from are counted for operators, and bad values are a 422 that
names the field. Against the real PostgreSQL: what the delivery rules read is
models.outbox.user_facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from marshmallow import Schema, ValidationError

from core.catalog import Role
from intake.fields import Locale
from models.db import db as database
from models.outbox import user_facts
from models.users import DEVICE_REPORT_REFRESH, User, ensure_user, record_device_report
from tests.factories import expo_token, make_env

DEFAULT_ZONE = "Europe/Berlin"


@pytest.fixture
def env(database_url: str, redis_url: str) -> dict[str, str]:
    return make_env(
        database_url,
        redis_url,
        DEFAULT_TIMEZONE=DEFAULT_ZONE,
        RATE_LIMIT_REGISTER_TOKEN="1000 per hour",
        RATE_LIMIT_SETTINGS="1000 per hour",
    )


def stored(db_session, user_id: str) -> User:
    db_session.expire_all()
    user = db_session.get(User, user_id)
    assert user is not None
    return user


def effective_zone(db_session, user_id: str, default: str = DEFAULT_ZONE) -> str:
    """The zone the delivery job runs the user's rules in (jobs.delivery.gate)."""
    db_session.expire_all()
    facts = user_facts(db_session, [user_id])[user_id]
    return facts.timezone or default


def heartbeat(client, auth_header, user_id: str, device_id: str, **fields):
    """One heartbeat per device per interval: each call names its own device."""
    return client.post(
        "/api/v1/realtime/heartbeat",
        json={"device_id": device_id, **fields},
        headers=auth_header(user_id),
    )


def counts(client, auth_header) -> dict:
    response = client.get("/api/v1/notifications/timezones", headers=auth_header("ops", Role.ADMIN))
    assert response.status_code == 200, response.json
    return response.json["data"]


# --- recording ------------------------------------------------------------------------


def test_register_token_records_the_devices_zone_and_locale(register, db_session):
    before = datetime.now(UTC)

    response = register("alice", timezone="America/New_York", locale="pt-br")

    assert response.status_code == 201, response.json
    user = stored(db_session, "alice")
    assert (user.device_timezone, user.device_locale) == ("America/New_York", "pt-BR")
    assert user.device_reported_at is not None and user.device_reported_at >= before
    assert user.timezone is None  # the explicit choice is the settings' alone
    assert effective_zone(db_session, "alice") == "America/New_York"


def test_register_token_without_them_records_nothing(register, db_session):
    assert register("alice").status_code == 201
    user = stored(db_session, "alice")
    assert (user.device_timezone, user.device_locale, user.device_reported_at) == (None,) * 3
    assert effective_zone(db_session, "alice") == DEFAULT_ZONE


def test_the_device_that_travels_moves_the_zone_most_recent_report_wins(
    register, client, auth_header, db_session
):
    register("alice", timezone="America/New_York", locale="en-US")
    assert effective_zone(db_session, "alice") == "America/New_York"

    response = heartbeat(client, auth_header, "alice", "iphone", timezone="Asia/Tokyo")

    assert response.status_code == 200, response.json
    user = stored(db_session, "alice")
    assert (user.device_timezone, user.device_locale) == ("Asia/Tokyo", "en-US")
    assert effective_zone(db_session, "alice") == "Asia/Tokyo"


def test_an_older_report_arriving_after_a_newer_one_is_ignored(app, db_session):
    newer, older = (
        datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
        datetime(2026, 11, 26, 11, 59, tzinfo=UTC),
    )
    with database.session_scope() as session:
        ensure_user(session, "alice")
        assert record_device_report(
            session, "alice", timezone="Asia/Tokyo", locale="ja", reported_at=newer
        )
    with database.session_scope() as session:
        written = record_device_report(
            session, "alice", timezone="America/New_York", locale="en", reported_at=older
        )

    assert written is False
    user = stored(db_session, "alice")
    assert (user.device_timezone, user.device_locale) == ("Asia/Tokyo", "ja")
    assert user.device_reported_at == newer


def test_a_report_that_changes_nothing_is_not_written_and_is_idempotent(app, db_session):
    first = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    with database.session_scope() as session:
        ensure_user(session, "alice")
        assert record_device_report(
            session, "alice", timezone="Asia/Tokyo", locale="ja", reported_at=first
        )
        # The same report again (a retried request) writes nothing.
        assert not record_device_report(
            session, "alice", timezone="Asia/Tokyo", locale="ja", reported_at=first
        )
        # The heartbeat repeating it a minute later: no write either.
        assert not record_device_report(
            session,
            "alice",
            timezone="Asia/Tokyo",
            locale="ja",
            reported_at=first + timedelta(minutes=1),
        )
    updated_at = stored(db_session, "alice").updated_at
    later = first + DEVICE_REPORT_REFRESH + timedelta(seconds=1)
    with database.session_scope() as session:
        # Once per DEVICE_REPORT_REFRESH the reported time moves on (last heard from).
        assert record_device_report(
            session, "alice", timezone="Asia/Tokyo", locale=None, reported_at=later
        )

    user = stored(db_session, "alice")
    assert user.device_reported_at == later
    assert user.updated_at >= updated_at


def test_only_the_fields_given_change(app, db_session):
    start = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    with database.session_scope() as session:
        ensure_user(session, "alice")
        record_device_report(
            session, "alice", timezone="Asia/Tokyo", locale="ja", reported_at=start
        )
        assert record_device_report(
            session, "alice", timezone=None, locale="es", reported_at=start + timedelta(seconds=1)
        )
        assert not record_device_report(
            session, "alice", timezone=None, locale=None, reported_at=start + timedelta(seconds=2)
        )

    user = stored(db_session, "alice")
    assert (user.device_timezone, user.device_locale) == ("Asia/Tokyo", "es")


def test_a_zone_chosen_in_the_settings_wins_over_device_reports_made_after_it(
    register, client, auth_header, db_session
):
    register("alice", timezone="America/New_York")
    response = client.put(
        "/api/v1/notifications/settings",
        json={"quiet_hours": {"timezone": "Europe/Lisbon"}},
        headers=auth_header("alice"),
    )
    assert response.status_code == 200, response.json

    register("alice", token=expo_token(2), timezone="Asia/Tokyo")
    heartbeat(client, auth_header, "alice", "iphone", timezone="Australia/Sydney")

    user = stored(db_session, "alice")
    assert user.timezone == "Europe/Lisbon"
    assert user.device_timezone == "Australia/Sydney"  # still recorded, for if it is cleared
    assert effective_zone(db_session, "alice") == "Europe/Lisbon"
    settings = client.get("/api/v1/notifications/settings", headers=auth_header("alice")).json
    assert settings["data"]["quiet_hours"]["timezone"] == "Europe/Lisbon"


# --- counted for operators --------------------------------------------------------------


def test_the_timezones_endpoint_counts_where_each_users_zone_comes_from(
    register, client, auth_header, db_session
):
    register("never-heard", token=expo_token(1))
    register("traveller", token=expo_token(2), timezone="Asia/Tokyo")
    register("chooser", token=expo_token(3), timezone="Asia/Tokyo")
    client.put(
        "/api/v1/notifications/settings",
        json={"quiet_hours": {"timezone": "Europe/Lisbon"}},
        headers=auth_header("chooser"),
    )
    client.get("/api/v1/notifications/settings", headers=auth_header("lurker"))  # a users row

    found = counts(client, auth_header)

    # "ops" (the admin asking) is a user too, never heard from.
    assert found == {
        "users": 5,
        "explicit": 1,
        "device": 1,
        "default": 3,
        "default_timezone": DEFAULT_ZONE,
    }
    assert effective_zone(db_session, "never-heard") == DEFAULT_ZONE


def test_a_user_becomes_device_counted_after_the_first_report(register, client, auth_header):
    register("alice")
    assert counts(client, auth_header)["default"] == 2  # alice and the admin asking

    heartbeat(client, auth_header, "alice", "iphone", timezone="America/New_York")

    assert counts(client, auth_header) | {"default_timezone": None} == {
        "users": 2,
        "explicit": 0,
        "device": 1,
        "default": 1,
        "default_timezone": None,
    }


@pytest.mark.parametrize("role", [Role.ADMIN, Role.SERVICE])
def test_admins_and_services_may_read_the_counts(client, auth_header, role):
    response = client.get("/api/v1/notifications/timezones", headers=auth_header("ops", role))
    assert response.status_code == 200, response.json
    assert set(response.json["data"]) == {
        "users",
        "explicit",
        "device",
        "default",
        "default_timezone",
    }


def test_a_user_may_not_read_the_counts(client, auth_header):
    response = client.get("/api/v1/notifications/timezones", headers=auth_header("alice"))
    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"


# --- bad values ---------------------------------------------------------------------------

BAD_VALUES = [
    ("timezone", "Mars/Olympus_Mons"),
    ("timezone", "EST5EDT,M3.2.0,M11.1.0"),
    ("timezone", 5),
    ("locale", "english"),
    ("locale", "e"),
    ("locale", "en-"),
    ("locale", "en US"),
    ("locale", "en-US-x-private"),
    ("locale", "a" * 2 + "-abcdefgh" * 4),
    ("locale", ["en"]),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_register_token_refuses_a_bad_zone_or_locale_naming_the_field(
    register, db_session, field, value
):
    response = register("alice", **{field: value})

    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "validation_error"
    assert list(response.json["error"]["details"]["fields"]) == [field]
    user = stored(db_session, "alice")
    assert (user.device_timezone, user.device_locale) == (None, None)


@pytest.mark.parametrize(("field", "value"), BAD_VALUES[:1] + BAD_VALUES[3:4])
def test_the_heartbeat_refuses_a_bad_zone_or_locale_naming_the_field(
    client, auth_header, db_session, field, value
):
    response = heartbeat(client, auth_header, "alice", "iphone", **{field: value})

    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "validation_error"
    assert list(response.json["error"]["details"]["fields"]) == [field]
    user = stored(db_session, "alice")
    assert (user.device_timezone, user.device_locale) == (None, None)


# --- the locale field -------------------------------------------------------------------


class LocaleOnly(Schema):
    locale = Locale()


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("en-us", "en-US"),
        ("pt_BR", "pt-BR"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("es-419", "es-419"),
        ("sr-latn-rs", "sr-Latn-RS"),
        ("de-CH-1996", "de-CH-1996"),
        ("yue-HK", "yue-HK"),
    ],
)
def test_a_locale_is_normalized_to_bcp47_case(given, normalized):
    assert LocaleOnly().load({"locale": given}) == {"locale": normalized}


@pytest.mark.parametrize("bad", ["e", "english", "en-", "-en", "én", "en\n", "en-US-x-a", "a" * 36])
def test_a_malformed_locale_is_refused(bad):
    with pytest.raises(ValidationError) as raised:
        LocaleOnly().load({"locale": bad})
    assert "locale" in raised.value.messages
