"""Activity reports, validated: the schema of POST /api/v1/activity (a batch of up to
MAX_ITEMS items) and of the socket's `activity` event (one item, at the moment it
arrives), and the check of whose activity each item is. The rules are core.activity's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from core.activity import MAX_ITEMS, metadata_problem, occurred_at_problem
from core.catalog import ActivityType, values
from core.requests import ActivityReport
from intake.fields import UserId, UtcDateTime


class ActivityMetadata(fields.Dict):
    """A JSON object of at most core.activity.MAX_METADATA_BYTES."""

    def __init__(self, **kwargs: Any):
        super().__init__(keys=fields.String(validate=validate.Length(max=64)), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        loaded = super()._deserialize(value, attr, data, **kwargs)
        problem = metadata_problem(loaded)
        if problem:
            raise ValidationError(problem)
        return loaded


class RecentMoment(UtcDateTime):
    """A moment no more than core.activity.MAX_AGE ago and no further ahead than
    CLOCK_SKEW."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        problem = occurred_at_problem(moment, datetime.now(UTC))
        if problem:
            raise ValidationError(problem)
        return moment


ACTIVITY_TYPE = validate.OneOf(values(ActivityType))


class ActivityItemSchema(Schema):
    activity_type = fields.String(required=True, validate=ACTIVITY_TYPE)
    occurred_at = RecentMoment(
        required=True,
        metadata={
            "description": "When it happened: ISO 8601 with an offset, at most 24 hours "
            "ago and at most 5 minutes ahead of the server's clock."
        },
    )
    metadata = ActivityMetadata(metadata={"description": "At most 2048 bytes of JSON."})
    user_id = UserId(
        metadata={
            "description": "Whose activity it is: required from a service, and, from a "
            "user, only the caller's own id."
        }
    )


class ActivityBatchSchema(Schema):
    items = fields.List(
        fields.Nested(ActivityItemSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_ITEMS),
    )


class SocketActivitySchema(Schema):
    """The socket's `activity` event: one item, which happened now."""

    activity_type = fields.String(required=True, validate=ACTIVITY_TYPE)
    metadata = ActivityMetadata()


def to_activity_reports(
    items: list[dict[str, Any]], caller_id: str, for_others: bool
) -> list[ActivityReport]:
    """Whose each item is: a user's (and an admin's) own, `user_id` absent or the caller's;
    a service's (`for_others`) always names it. Raises ValidationError naming every
    refused item's `user_id` (`{"items": {index: {"user_id": [...]}}}`)."""
    errors: dict[int, dict[str, list[str]]] = {}
    reports = []
    for index, item in enumerate(items):
        user_id = item.get("user_id")
        if for_others and user_id is None:
            errors[index] = {"user_id": ["A service reports for a user: give user_id."]}
            continue
        if not for_others and user_id not in (None, caller_id):
            errors[index] = {"user_id": ["You may report only your own activity."]}
            continue
        reports.append(
            ActivityReport(
                user_id=user_id or caller_id,
                activity_type=item["activity_type"],
                occurred_at=item["occurred_at"],
                metadata=item.get("metadata") or {},
            )
        )
    if errors:
        raise ValidationError({"items": errors})
    return reports
