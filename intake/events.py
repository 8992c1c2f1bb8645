"""A backend real-time event, validated: the schema of POST /api/v1/realtime/events (and of
`intake.client.publish_event`), and the cross-field checks that turn it into an
EventRequest. A match_update names its two people and carries the match change."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from core.catalog import MatchStatus, RealtimeEventType, values
from core.requests import EventRequest, MatchChange
from core.timefmt import iso
from intake.fields import UserId, UtcDateTime

MAX_TARGETS = 1000
MAX_PAYLOAD_BYTES = 16_000


class PublishEventSchema(Schema):
    event_type = fields.String(required=True, validate=validate.OneOf(values(RealtimeEventType)))
    user_id = UserId(
        metadata={
            "description": "Who the event is about (for match_update: one of the two people)."
        }
    )
    target_user_id = UserId(metadata={"description": "Who receives it."})
    target_user_ids = fields.List(UserId(), validate=validate.Length(min=1, max=MAX_TARGETS))
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
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in payload.items()}


def build_event_request(raw: dict[str, Any]) -> EventRequest:
    """Load and check a raw payload (for callers outside HTTP)."""
    return to_event_request(PublishEventSchema().load(raw))
