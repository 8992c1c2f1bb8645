"""Request and response schemas of the notifications API (tokens and settings).

They validate requests and, through flask-smorest, are the OpenAPI document.
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from core.catalog import Platform, PresenceVisibility, Provider, QuietBehavior, values
from core.preferences import TimezoneSource
from intake.fields import Locale, StrictBoolean, TimeOfDay, TimeZoneName


class RegisterTokenSchema(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=4096))
    platform = fields.String(required=True, validate=validate.OneOf(values(Platform)))
    provider = fields.String(
        validate=validate.OneOf(values(Provider)),
        metadata={"description": "Inferred from the token's form when absent."},
    )
    device_id = fields.String(validate=validate.Length(min=1, max=128))
    app_version = fields.String(validate=validate.Length(min=1, max=32))
    timezone = TimeZoneName(
        metadata={
            "example": "America/New_York",
            "description": "The device's IANA time zone: quiet hours and the daily cap follow "
            "it unless the user chose a zone in the settings.",
        }
    )
    locale = Locale(
        metadata={
            "example": "es-MX",
            "description": "The device's BCP 47 language tag: it chooses the push templates.",
        }
    )


class UnregisterTokenSchema(Schema):
    token = fields.String(validate=validate.Length(min=1, max=4096))
    token_id = fields.UUID()

    @validates_schema
    def exactly_one_key(self, data: dict, **_: object) -> None:
        if ("token" in data) == ("token_id" in data):
            raise ValidationError("Give exactly one of token or token_id.", "token")


class TokenResultSchema(Schema):
    message = fields.String(required=True)
    token_id = fields.UUID(required=True)


QUIET_HOURS_BEHAVIOR = (
    "During quiet hours: defer (hold the push until they end) or quiet (send it now "
    "without sound, vibration or lighting the screen)."
)


class TypeSettingSchema(Schema):
    notification_type = fields.String(required=True)
    is_enabled = StrictBoolean(required=True)
    push_enabled = StrictBoolean(required=True)
    email_enabled = StrictBoolean(required=True)
    quiet_hours_behavior = fields.String(
        required=True,
        validate=validate.OneOf(values(QuietBehavior)),
        metadata={"description": QUIET_HOURS_BEHAVIOR},
    )


class TypeSettingChangeSchema(Schema):
    notification_type = fields.String(required=True, validate=validate.Length(min=1, max=64))
    is_enabled = StrictBoolean()
    push_enabled = StrictBoolean()
    email_enabled = StrictBoolean()
    quiet_hours_behavior = fields.String(
        validate=validate.OneOf(values(QuietBehavior)),
        metadata={"description": QUIET_HOURS_BEHAVIOR},
    )


class QuietHoursSchema(Schema):
    start = TimeOfDay(required=True, metadata={"example": "22:00"})
    end = TimeOfDay(required=True, metadata={"example": "08:00"})
    timezone = TimeZoneName(required=True, metadata={"example": "America/New_York"})
    timezone_source = fields.String(
        required=True,
        validate=validate.OneOf(values(TimezoneSource)),
        metadata={
            "description": "explicit (chosen here), device (the latest device report) or "
            "default (never heard from: the deployment's DEFAULT_TIMEZONE)."
        },
    )


class QuietHoursChangeSchema(Schema):
    start = TimeOfDay(metadata={"example": "22:00"})
    end = TimeOfDay(metadata={"example": "08:00"})
    timezone = TimeZoneName(
        allow_none=True,
        metadata={
            "example": "America/New_York",
            "description": "A zone to keep whatever the device says; null follows the device.",
        },
    )


PRESENCE_VISIBILITY = "Who sees your presence: everyone, matches (the default) or nobody."
SHOW_PREVIEWS = (
    'Whether message and match pushes show names and text; false: only "New message" / "New match".'
)


class PrivacySchema(Schema):
    presence_visibility = fields.String(
        required=True,
        validate=validate.OneOf(values(PresenceVisibility)),
        metadata={"description": PRESENCE_VISIBILITY},
    )
    show_previews = StrictBoolean(required=True, metadata={"description": SHOW_PREVIEWS})


class PrivacyChangeSchema(Schema):
    presence_visibility = fields.String(
        validate=validate.OneOf(values(PresenceVisibility)),
        metadata={"description": PRESENCE_VISIBILITY},
    )
    show_previews = StrictBoolean(metadata={"description": SHOW_PREVIEWS})

    @validates_schema
    def something_to_change(self, data: dict, **_: object) -> None:
        if not data:
            raise ValidationError("Give presence_visibility, show_previews, or both.")


class SettingsSchema(Schema):
    settings = fields.List(fields.Nested(TypeSettingSchema), required=True)
    quiet_hours = fields.Nested(QuietHoursSchema, required=True)
    privacy = fields.Nested(PrivacySchema, required=True)


class SettingsChangeSchema(Schema):
    settings = fields.List(
        fields.Nested(TypeSettingChangeSchema), validate=validate.Length(max=100)
    )
    quiet_hours = fields.Nested(QuietHoursChangeSchema)
    privacy = fields.Nested(PrivacyChangeSchema)

    @validates_schema
    def something_to_change(self, data: dict, **_: object) -> None:
        if not data.get("settings") and not data.get("quiet_hours") and not data.get("privacy"):
            raise ValidationError("Give settings, quiet_hours or privacy.", "settings")
        seen: set[str] = set()
        for item in data.get("settings") or []:
            if item["notification_type"] in seen:
                raise ValidationError(
                    f"{item['notification_type']} appears more than once.", "settings"
                )
            seen.add(item["notification_type"])


class DeviceSchema(Schema):
    """A registered device, as operators see it: never the token itself."""

    token_id = fields.UUID(attribute="id", required=True)
    platform = fields.String(required=True)
    provider = fields.String(required=True)
    device_id = fields.String(allow_none=True)
    app_version = fields.String(allow_none=True)
    is_active = fields.Boolean(required=True)
    last_used = fields.DateTime(required=True)
    deactivation_reason = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)


class DeviceListSchema(Schema):
    user_id = fields.String(required=True)
    devices = fields.List(fields.Nested(DeviceSchema), required=True)
