"""Payload schemas of the Socket.IO events a client sends, and of the handshake's auth.

A payload that does not load gets an `error` event (invalid_payload) naming the fields.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from core.catalog import Platform, values
from core.presence import CHOOSABLE
from intake.fields import Locale, StrictBoolean, TimeZoneName, UserId

MAX_SUBSCRIBE = 500


class HandshakeSchema(Schema):
    """The auth payload's device fields (the token is read apart); others are ignored."""

    class Meta:
        unknown = EXCLUDE

    device_id = fields.String(validate=validate.Length(min=1, max=128))
    platform = fields.String(validate=validate.OneOf(values(Platform)))
    app_version = fields.String(validate=validate.Length(min=1, max=32))
    low_battery = StrictBoolean()
    timezone = TimeZoneName()  # the device's IANA zone
    locale = Locale()  # the device's BCP 47 language tag


class PresenceUpdateSchema(Schema):
    status = fields.String(validate=validate.OneOf([s.value for s in CHOOSABLE]))
    low_battery = StrictBoolean()

    @validates_schema
    def something(self, data: dict, **_: object) -> None:
        if not data:
            raise ValidationError("Give status, low_battery, or both.", "status")


class PresenceSubscribeSchema(Schema):
    user_ids = fields.List(
        UserId(),
        required=True,
        validate=validate.Length(min=1, max=MAX_SUBSCRIBE),
    )


class HeartbeatEventSchema(Schema):
    low_battery = StrictBoolean()


class ConversationSchema(Schema):
    conversation_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class TypingProgressSchema(ConversationSchema):
    char_count = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=100_000)
    )
    duration_ms = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=3_600_000)
    )
