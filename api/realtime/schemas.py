"""Request and response schemas of the real-time HTTP API (status, heartbeat, events), and
the one function that turns a validated event payload into an EventRequest (used by the
API and by intake.dispatch.publish_event)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from core.catalog import MatchStatus, PresenceState, RealtimeEventType, values
from intake.fields import StrictBoolean, UtcDateTime

USER_ID = re.compile(r"^[^\s\x00-\x1f\x7f]{1,64}$")
MAX_TARGETS = 1000
MAX_PAYLOAD_BYTES = 16_000


def _user_id(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=validate.Regexp(USER_ID, error="Not a user id (1-64 visible characters)."),
        **kwargs,
    )


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


class PresenceSchema(Schema):
    user_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(values(PresenceState)))
    last_seen = fields.String(allow_none=True)


class HeartbeatResultSchema(Schema):
    acknowledged = fields.Boolean(required=True)
    server_time = fields.String(required=True)
    next_heartbeat_in = fields.Integer(required=True, metadata={"description": "seconds"})
    presence = fields.Nested(PresenceSchema, required=True)


class PublishEventSchema(Schema):
    event_type = fields.String(required=True, validate=validate.OneOf(values(RealtimeEventType)))
    user_id = _user_id(
        metadata={
            "description": "Who the event is about (for match_update: one of the two people)."
        }
    )
    target_user_id = _user_id(metadata={"description": "Who receives it."})
    target_user_ids = fields.List(_user_id(), validate=validate.Length(min=1, max=MAX_TARGETS))
    payload = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=64)))

    @validates_schema
    def has_targets(self, data: dict[str, Any], **_: object) -> None:
        if "target_user_id" not in data and "target_user_ids" not in data:
            raise ValidationError("Give target_user_id or target_user_ids.", "target_user_id")
        if "target_user_id" in data and "target_user_ids" in data:
            raise ValidationError(
                "Give target_user_id or target_user_ids, not both.", "target_user_ids"
            )


class MatchChangeSchema(Schema):
    """The payload of a match_update: what is upserted into the matches table."""

    status = fields.String(required=True, validate=validate.OneOf(values(MatchStatus)))
    expires_at = UtcDateTime(allow_none=True)
    conversation_id = fields.String(allow_none=True, validate=validate.Length(min=1, max=64))

    class Meta:
        unknown = "include"


class EventAcceptedSchema(Schema):
    event_ids = fields.List(fields.UUID(), required=True)
    count = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"example": "accepted"})
    match_id = fields.UUID(metadata={"description": "match_update only: the upserted match."})


@dataclass(frozen=True)
class MatchChange:
    user_a_id: str
    user_b_id: str
    changes: dict[str, Any]


@dataclass(frozen=True)
class EventRequest:
    event_type: RealtimeEventType
    user_id: str | None
    target_user_ids: tuple[str, ...]
    payload: dict[str, Any] = field(default_factory=dict)
    match: MatchChange | None = None


def to_event_request(args: dict[str, Any]) -> EventRequest:
    """Cross-field checks on a loaded payload; raises ValidationError naming the field."""
    event_type = RealtimeEventType(args["event_type"])
    payload = args.get("payload") or {}
    if len(json.dumps(payload, ensure_ascii=False, default=str).encode()) > MAX_PAYLOAD_BYTES:
        raise ValidationError({"payload": [f"At most {MAX_PAYLOAD_BYTES} bytes of JSON."]})
    targets = (
        (args["target_user_id"],) if "target_user_id" in args else tuple(args["target_user_ids"])
    )
    targets = tuple(dict.fromkeys(targets))
    user_id = args.get("user_id")
    if event_type is not RealtimeEventType.MATCH_UPDATE:
        return EventRequest(event_type, user_id, targets, payload)
    people = tuple(dict.fromkeys(((user_id,) if user_id else ()) + targets))
    if len(people) != 2:
        raise ValidationError(
            {
                "target_user_id": [
                    "A match_update names exactly two people: user_id and "
                    "target_user_id (or two target_user_ids)."
                ]
            }
        )
    try:
        loaded = MatchChangeSchema().load(payload)
    except ValidationError as exc:
        raise ValidationError({"payload": exc.messages}) from None
    changes = {k: loaded[k] for k in ("status", "expires_at", "conversation_id") if k in loaded}
    first, second = sorted(people)
    # Stored as one row: the broadcast sends it to both people.
    return EventRequest(
        event_type,
        first,
        (second,),
        _json_ready(payload),
        MatchChange(first, second, changes),
    )


def _json_ready(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in payload.items()}


def build_event_request(raw: dict[str, Any]) -> EventRequest:
    """Load and check a raw payload (for callers outside HTTP)."""
    return to_event_request(PublishEventSchema().load(raw))
