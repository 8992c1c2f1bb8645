"""Marshmallow fields shared by every request schema (HTTP, Socket.IO and the in-process
client): strict types, user ids, times of day, time zones, UTC date-times."""

from __future__ import annotations

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
