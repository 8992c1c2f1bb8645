"""Marshmallow fields shared by every request schema (HTTP, Socket.IO and the in-process
client): strict types, user ids, times of day, time zones, locales, UTC date-times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from marshmallow import ValidationError, fields, validate

from core.config import parse_hh_mm
from core.ids import USER_ID_PATTERN, USER_ID_RULE


class StrictBoolean(fields.Boolean):
    """Only JSON true/false: "yes", 1 or "false" are type errors, not guesses."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Not a boolean: use true or false.")
        return value


class UserId(fields.String):
    """A user id (core.ids: 1-64 visible characters)."""

    def __init__(self, **kwargs: Any):
        super().__init__(
            validate=validate.Regexp(USER_ID_PATTERN, error=f"Not a user id ({USER_ID_RULE})."),
            **kwargs,
        )


class TimeOfDay(fields.Field):
    """A time of day as "HH:MM" (24-hour)."""

    def _serialize(self, value: time | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else value.strftime("%H:%M")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> time:
        if not isinstance(value, str):
            raise ValidationError('Not a time of day: use "HH:MM", e.g. "22:00".')
        try:
            return parse_hh_mm(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


@cache
def known_time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


class TimeZoneName(fields.String):
    """An IANA time zone name that zoneinfo knows, e.g. "America/New_York"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        name = super()._deserialize(value, attr, data, **kwargs)
        if name not in known_time_zones():
            raise ValidationError(f"{name!r} is not an IANA time zone name (e.g. Europe/London).")
        return name


# BCP 47 as Pulse stores it (users.device_locale's CHECK): a 2-3 letter language, then up
# to three subtags of 2-8 letters or digits (script, region, variant), 35 characters at most.
LOCALE_PATTERN = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,3}")
LOCALE_MAX_LENGTH = 35


def normalize_locale(tag: str) -> str:
    """BCP 47's case conventions: language lower, script title ("Hant"), region upper
    ("BR", "419"), anything else lower. "pt_br" (the POSIX separator) becomes "pt-BR"."""
    language, *rest = tag.replace("_", "-").split("-")
    subtags = [language.lower()]
    for subtag in rest:
        if len(subtag) == 4 and subtag.isalpha():
            subtags.append(subtag.title())
        elif (len(subtag) == 2 and subtag.isalpha()) or (len(subtag) == 3 and subtag.isdigit()):
            subtags.append(subtag.upper())
        else:
            subtags.append(subtag.lower())
    return "-".join(subtags)


class Locale(fields.String):
    """A BCP 47 language tag such as "en", "en-US", "pt-BR" or "zh-Hant-TW", returned in
    BCP 47's case ("EN-us" -> "en-US"); "_" is accepted as the separator."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        tag = super()._deserialize(value, attr, data, **kwargs)
        candidate = tag.replace("_", "-")
        if len(candidate) > LOCALE_MAX_LENGTH or not LOCALE_PATTERN.fullmatch(candidate):
            raise ValidationError(
                f"{tag[:40]!r} is not a BCP 47 language tag (e.g. en, en-US, pt-BR, zh-Hant-TW)."
            )
        return normalize_locale(candidate)


class UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 date-time with an offset, normalized to UTC (PostgreSQL refuses offsets
    past ±15:59), between 1970 and 9000."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            moment = moment.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValidationError("Not a representable date-time.") from None
        if not 1970 <= moment.year <= 9000:
            raise ValidationError("Must be between 1970 and 9000.")
        return moment
