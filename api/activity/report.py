"""POST /activity: a batch of up to 100 things a user did, written in one INSERT."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from api.activity.blueprint import blp
from api.activity.schemas import ActivityAcceptedSchema
from api.auth import ANY_ROLE, authenticated, current_principal
from api.envelope import envelope, ok
from api.errors import ValidationFailed
from api.extensions import limiter, request_session
from core.catalog import Role
from intake.activity import ActivityBatchSchema, to_activity_reports
from models.activity import record_activity
from runtime import current_runtime

SECURITY = [{"bearerAuth": []}]


def _activity_limit() -> str:
    return current_runtime().settings.api.rate_limit_activity


@blp.route("", methods=["POST"])
@limiter.limit(_activity_limit)
@authenticated(*ANY_ROLE)  # a user or an admin for themselves, a service for users
@blp.arguments(ActivityBatchSchema)
@blp.response(202, envelope(ActivityAcceptedSchema))
@blp.doc(security=SECURITY)
def report(args: dict[str, Any]) -> dict[str, Any]:
    """Record what users did. A user (or an admin) reports their own activity (`user_id`
    absent or their own); a service reports on users' behalf, naming `user_id` in every
    item. All or nothing: one refused item is a 422 naming it, and nothing is written.
    RATE_LIMIT_ACTIVITY per caller (429 beyond)."""
    principal = current_principal()
    try:
        reports = to_activity_reports(
            args["items"], principal.user_id, for_others=principal.role is Role.SERVICE
        )
    except ValidationError as exc:
        fields_ = exc.messages if isinstance(exc.messages, dict) else {"_body": exc.messages}
        raise ValidationFailed(
            f"Invalid value for {', '.join(sorted(fields_))}.", details={"fields": fields_}
        ) from None
    return ok({"accepted": record_activity(request_session(), reports)})
