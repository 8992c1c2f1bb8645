"""A send, validated: the schema of POST /api/v1/notifications/send (and of
`intake.client.notify`), and the cross-field checks that turn it into a SendRequest
(data size, expiry after schedule, a template that can render)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from core.catalog import TYPE_DEFAULTS, NotificationType, Platform, Priority, values
from core.presentation import RESERVED_DATA_KEYS
from core.requests import SendRequest
from core.templates import MissingText, render
from intake.fields import StrictBoolean, UserId, UtcDateTime

MAX_RECIPIENTS = 10_000
MAX_DATA_BYTES = 2_500  # with the capped title (200 B) and body (800 B), fits the providers' 4 KB


class TargetSchema(Schema):
    user_ids = fields.List(
        UserId(),
        validate=validate.Length(min=1, max=MAX_RECIPIENTS),
    )
    all_users = StrictBoolean()
    platforms = fields.List(
        fields.String(validate=validate.OneOf(values(Platform))),
        validate=validate.Length(min=1, max=len(Platform)),
    )

    @validates_schema
    def one_audience(self, data: dict[str, Any], **_: object) -> None:
        if ("user_ids" in data) == bool(data.get("all_users")):
            raise ValidationError("Give either user_ids or all_users: true.", "user_ids")


class SendSchema(Schema):
    notification_type = fields.String(
        required=True, validate=validate.OneOf(values(NotificationType))
    )
    title = fields.String(validate=validate.Length(min=1, max=200))
    body = fields.String(validate=validate.Length(min=1, max=2000))
    data = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=64)))
    priority = fields.String(
        validate=validate.OneOf(values(Priority)),
        metadata={"description": "Defaults to the type's priority."},
    )
    target = fields.Nested(TargetSchema, required=True)
    scheduled_for = UtcDateTime(
        metadata={"description": "Send at this time (ISO 8601 with offset)."}
    )
    expires_at = UtcDateTime(metadata={"description": "Never send after this time."})
    idempotency_key = fields.String(validate=validate.Length(min=1, max=128))


def to_send_request(args: dict[str, Any], now: datetime) -> SendRequest:
    """Cross-field checks on a loaded payload; raises ValidationError naming the field."""
    notification_type = NotificationType(args["notification_type"])
    data = args.get("data") or {}
    if len(json.dumps(data, ensure_ascii=False).encode()) > MAX_DATA_BYTES:
        raise ValidationError({"data": [f"At most {MAX_DATA_BYTES} bytes of JSON."]})
    if reserved := sorted(RESERVED_DATA_KEYS & data.keys()):
        raise ValidationError(
            {"data": [f"Reserved keys (the providers' and the app's): {', '.join(reserved)}."]}
        )
    expires_at, scheduled_for = args.get("expires_at"), args.get("scheduled_for")
    if expires_at is not None and expires_at <= max(now, scheduled_for or now):
        raise ValidationError({"expires_at": ["Must be in the future and after scheduled_for."]})
    try:
        render(notification_type, data, title=args.get("title"), body=args.get("body"))
    except MissingText as exc:
        raise ValidationError({"title": [str(exc)]}) from None
    target = args["target"]
    user_ids = tuple(dict.fromkeys(target.get("user_ids", ())))  # de-duplicated, in order
    return SendRequest(
        notification_type=notification_type,
        priority=Priority(args.get("priority") or TYPE_DEFAULTS[notification_type].priority),
        data=data,
        title=args.get("title"),
        body=args.get("body"),
        user_ids=user_ids,
        all_users=bool(target.get("all_users")),
        platforms=tuple(sorted(set(target["platforms"]))) if "platforms" in target else None,
        scheduled_for=scheduled_for,
        expires_at=expires_at,
        idempotency_key=args.get("idempotency_key"),
    )


def build_send_request(payload: dict[str, Any], now: datetime) -> SendRequest:
    """Load and check a raw payload (for callers outside HTTP)."""
    return to_send_request(SendSchema().load(payload), now)
