"""Schemas of the real-time HTTP API that only the API uses: status, heartbeat, and the
answer to a published event (the event's own schema is intake.events')."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from core.catalog import PresenceState, values
from intake.fields import Locale, StrictBoolean, TimeZoneName


class FeaturesSchema(Schema):
    typing_indicators = fields.Boolean(required=True)
    read_receipts = fields.Boolean(required=True)
    presence_status = fields.Boolean(required=True)
    push_notifications = fields.Boolean(required=True)


class StatusSchema(Schema):
    websocket_connected = fields.Boolean(required=True)
    last_heartbeat = fields.String(allow_none=True, required=True)
    active_connections = fields.Integer(required=True)
    server_status = fields.String(
        required=True, metadata={"description": "healthy, degraded (no gateway) or unavailable"}
    )
    features = fields.Nested(FeaturesSchema, required=True)


class HeartbeatSchema(Schema):
    connection_id = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "The Socket.IO sid this heartbeat keeps alive, if any."},
    )
    device_id = fields.String(validate=validate.Length(min=1, max=128))
    low_battery = StrictBoolean()
    timezone = TimeZoneName(
        metadata={
            "example": "America/New_York",
            "description": "The device's IANA time zone, when the app knows it (written only "
            "when it changes).",
        }
    )
    locale = Locale(
        metadata={"example": "es-MX", "description": "The device's BCP 47 language tag."}
    )


class PresenceSchema(Schema):
    user_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(values(PresenceState)))
    last_seen = fields.String(allow_none=True)


class HeartbeatResultSchema(Schema):
    acknowledged = fields.Boolean(required=True)
    server_time = fields.String(required=True)
    next_heartbeat_in = fields.Integer(required=True, metadata={"description": "seconds"})
    presence = fields.Nested(PresenceSchema, required=True)


class EventAcceptedSchema(Schema):
    event_ids = fields.List(fields.UUID(), required=True)
    count = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"example": "accepted"})
    match_id = fields.UUID(metadata={"description": "match_update only: the upserted match."})


