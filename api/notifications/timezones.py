"""GET /notifications/timezones (admin, service): how many users' quiet hours and daily cap
run in a zone they chose, in their device's, or in DEFAULT_TIMEZONE (never heard from)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from api.auth import authenticated
from api.envelope import envelope, ok
from api.extensions import request_session
from api.notifications.blueprint import blp
from core.catalog import Role
from models.users import timezone_sources
from runtime import current_runtime

SECURITY = [{"bearerAuth": []}]


class TimezoneSourcesSchema(Schema):
    users = fields.Integer(required=True, metadata={"description": "All users Pulse knows."})
    explicit = fields.Integer(
        required=True, metadata={"description": "Chose a zone in the settings (it wins)."}
    )
    device = fields.Integer(
        required=True,
        metadata={"description": "No zone chosen; their latest device report gave one."},
    )
    default = fields.Integer(
        required=True,
        metadata={"description": "Never heard from: their rules run in DEFAULT_TIMEZONE."},
    )
    default_timezone = fields.String(
        required=True, metadata={"description": "DEFAULT_TIMEZONE", "example": "UTC"}
    )


@blp.route("/timezones", methods=["GET"])
@authenticated(Role.ADMIN, Role.SERVICE)
@blp.response(200, envelope(TimezoneSourcesSchema))
@blp.doc(security=SECURITY)
def timezone_counts() -> dict[str, Any]:
    """How many users' time zones are explicit, the device's, or the default (operators).

    explicit: chosen in the settings (it wins); device: none chosen, the latest device
    report gave one; default: never heard from, so DEFAULT_TIMEZONE applies."""
    sources = timezone_sources(request_session())
    return ok(
        {
            "users": sources.users,
            "explicit": sources.explicit,
            "device": sources.device,
            "default": sources.default,
            "default_timezone": current_runtime().settings.rules.default_timezone,
        }
    )
