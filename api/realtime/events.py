"""POST /realtime/events (role service): store a backend event and let a job broadcast it."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from api.auth import authenticated
from api.envelope import envelope, ok
from api.errors import ValidationFailed
from api.extensions import request_session
from api.realtime.blueprint import blp
from api.realtime.schemas import EventAcceptedSchema
from core.catalog import Role
from intake.dispatch import dispatch_events
from intake.events import PublishEventSchema, to_event_request
from models.events import accept_event
from runtime import current_runtime

SECURITY = [{"bearerAuth": []}]


@blp.route("/events", methods=["POST"])
@authenticated(Role.SERVICE)
@blp.arguments(PublishEventSchema)
@blp.response(202, envelope(EventAcceptedSchema))
@blp.doc(security=SECURITY)
def publish(args: dict[str, Any]) -> dict[str, Any]:
    """Accept an event for its target(s); a worker sends it to their sockets, or, to those
    not connected, sends its push counterpart (match, expiring match, conversation, boost).
    A match_update also upserts the match of its two people."""
    try:
        request = to_event_request(args)
    except ValidationError as exc:
        fields = exc.messages if isinstance(exc.messages, dict) else {"_body": exc.messages}
        raise ValidationFailed(
            f"Invalid value for {', '.join(sorted(fields))}.", details={"fields": fields}
        ) from None
    accepted = accept_event(request_session(), request)
    dispatch_events(current_runtime(), accepted)
    return ok(accepted.response)
