"""Schemas that only the notification API uses: the answer to a send, one notification
with its deliveries, and the inbox (the send's own schema is intake.sends')."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class SendAcceptedSchema(Schema):
    send_id = fields.UUID(required=True)
    count = fields.Integer(required=True)
    notification_ids = fields.List(fields.UUID())
    status = fields.String(required=True, metadata={"example": "accepted"})


class DeliverySchema(Schema):
    id = fields.UUID(required=True)
    token_id = fields.UUID(allow_none=True)
    provider = fields.String(required=True)
    status = fields.String(required=True)
    provider_message_id = fields.String(allow_none=True)
    error_reason = fields.String(allow_none=True)
    latency_ms = fields.Integer(allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class NotificationSchema(Schema):
    id = fields.UUID(required=True)
    user_id = fields.String(required=True)
    notification_type = fields.String(required=True)
    title = fields.String(required=True)
    body = fields.String(required=True)
    data = fields.Dict(required=True)
    priority = fields.String(required=True)
    status = fields.String(required=True)
    reason = fields.String(allow_none=True)
    attempts = fields.Integer(required=True)
    scheduled_for = fields.DateTime(required=True)
    expires_at = fields.DateTime(allow_none=True)
    sent_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)


class NotificationDetailSchema(NotificationSchema):
    deliveries = fields.List(fields.Nested(DeliverySchema), required=True)


class InboxQuerySchema(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String(validate=validate.Length(max=200))


class InboxSchema(Schema):
    items = fields.List(fields.Nested(NotificationSchema), required=True)
    next_cursor = fields.String(allow_none=True)
