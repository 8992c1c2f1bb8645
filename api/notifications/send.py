"""Send routes (admin and service roles) and the read routes: one notification with its
deliveries, and the caller's inbox."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError

from api.auth import ANY_ROLE, authenticated, current_principal
from api.envelope import envelope, ok
from api.errors import Conflict, NotFound, ValidationFailed
from api.extensions import request_session
from api.notifications.blueprint import blp
from api.notifications.send_schemas import (
    InboxQuerySchema,
    InboxSchema,
    NotificationDetailSchema,
    SendAcceptedSchema,
)
from core.catalog import Role
from intake.dispatch import dispatch
from intake.sends import SendSchema, to_send_request
from models.notifications import Notification, deliveries_of, inbox_page
from models.sends import IdempotencyConflict, accept_send
from runtime import current_runtime

SECURITY = [{"bearerAuth": []}]


@blp.route("/send", methods=["POST"])
@authenticated(Role.ADMIN, Role.SERVICE)
@blp.arguments(SendSchema)
@blp.response(202, envelope(SendAcceptedSchema))
@blp.doc(security=SECURITY)
def send_notification(args: dict[str, Any]) -> dict[str, Any]:
    """Accept a notification for some users (or all); it is delivered by the workers.

    The same idempotency_key again returns the first answer and creates nothing.
    """
    now = datetime.now(UTC)
    try:
        request = to_send_request(args, now)
    except ValidationError as exc:
        raise ValidationFailed(
            f"Invalid value for {', '.join(exc.messages_dict)}.",
            details={"fields": exc.messages_dict},
        ) from None
    try:
        accepted = accept_send(request_session(), request, current_principal().user_id, now)
    except IdempotencyConflict:
        raise Conflict(
            "This idempotency_key was already used for a different request.",
            details={"idempotency_key": request.idempotency_key},
        ) from None
    settings = current_runtime().settings
    dispatch(current_runtime().redis, accepted, settings.delivery.batch_size)
    return ok(accepted.response)


@blp.route("/<uuid:notification_id>", methods=["GET"])
@authenticated(*ANY_ROLE)
@blp.response(200, envelope(NotificationDetailSchema))
@blp.doc(security=SECURITY)
def get_notification(notification_id: uuid.UUID) -> dict[str, Any]:
    """One notification: its status, attempts and each device's delivery (its user, admin or
    service)."""
    session = request_session()
    principal = current_principal()
    notification = session.get(Notification, notification_id)
    if notification is None or (
        principal.role is Role.USER and notification.user_id != principal.user_id
    ):
        raise NotFound("No such notification.")
    return ok({**_columns(notification), "deliveries": deliveries_of(session, notification_id)})


@blp.route("/", methods=["GET"], strict_slashes=False)
@authenticated()
@blp.arguments(InboxQuerySchema, location="query")
@blp.response(200, envelope(InboxSchema))
@blp.doc(security=SECURITY)
def list_notifications(args: dict[str, Any]) -> dict[str, Any]:
    """The caller's recent notifications, newest first; pass next_cursor to page on."""
    rows = inbox_page(
        request_session(), current_principal().user_id, args["limit"], _decode(args.get("cursor"))
    )
    next_cursor = _encode(rows[-1]) if len(rows) == args["limit"] else None
    return ok({"items": rows, "next_cursor": next_cursor})


def _columns(notification: Notification) -> dict[str, Any]:
    return {
        column: getattr(notification, column)
        for column in NotificationDetailSchema().fields
        if column != "deliveries"
    }


def _encode(row: Notification) -> str:
    raw = f"{row.created_at.isoformat()}|{row.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not cursor:
        return None
    try:
        created_at, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed(
            "Invalid cursor.", details={"fields": {"cursor": ["Not a cursor from this API."]}}
        ) from None
