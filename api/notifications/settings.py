"""Settings routes: the caller's per-type notification flags and quiet hours."""

from __future__ import annotations

from typing import Any

from api.auth import authenticated, current_principal
from api.envelope import envelope, ok
from api.errors import ApiError
from api.extensions import limiter, request_session
from api.notifications.blueprint import blp
from api.notifications.schemas import SettingsChangeSchema, SettingsSchema
from api.realtime.visibility import change_presence_visibility
from core.catalog import NotificationType, PresenceVisibility, values
from core.preferences import FLAGS
from models.settings import UserSettings, read_settings, update_settings
from models.users import presence_visibilities
from runtime import current_runtime

SECURITY = [{"bearerAuth": []}]


class UnknownNotificationType(ApiError):
    status = 400
    code = "unknown_notification_type"


def _settings_limit() -> str:
    return current_runtime().settings.api.rate_limit_settings


def _as_response(user_settings: UserSettings) -> dict[str, Any]:
    quiet = user_settings.quiet_hours
    visibility = presence_visibilities(request_session(), [current_principal().user_id])
    return {
        "settings": [
            {"notification_type": p.notification_type.value, **{f: getattr(p, f) for f in FLAGS}}
            for p in user_settings.preferences
        ],
        "quiet_hours": {"start": quiet.start, "end": quiet.end, "timezone": quiet.timezone},
        "privacy": {
            "presence_visibility": next(iter(visibility.values()), PresenceVisibility.EVERYONE)
        },
    }


def _current_settings() -> UserSettings:
    config = current_runtime().settings
    return read_settings(
        request_session(),
        current_principal().user_id,
        config.rules.quiet_hours_default_start,
        config.rules.quiet_hours_default_end,
    )


@blp.route("/settings", methods=["GET"])
@limiter.limit(_settings_limit)
@authenticated()
@blp.response(200, envelope(SettingsSchema))
@blp.doc(security=SECURITY)
def get_settings() -> dict[str, Any]:
    """Every notification type with defaults filled in, and the quiet hours."""
    return ok(_as_response(_current_settings()))


@blp.route("/settings", methods=["PUT"])
@limiter.limit(_settings_limit)
@authenticated()
@blp.arguments(SettingsChangeSchema)
@blp.response(200, envelope(SettingsSchema))
@blp.doc(security=SECURITY)
def put_settings(args: dict[str, Any]) -> dict[str, Any]:
    """Change some flags and/or the quiet hours; what is not given stays as it is."""
    changes: dict[NotificationType, dict[str, bool]] = {}
    for item in args.get("settings") or []:
        name = item["notification_type"]
        if name not in values(NotificationType):
            raise UnknownNotificationType(
                f"Unknown notification type {name!r}.",
                details={"notification_type": name, "known": values(NotificationType)},
            )
        changes[NotificationType(name)] = {f: item[f] for f in FLAGS if f in item}
    config = current_runtime().settings
    update_settings(
        request_session(),
        current_principal().user_id,
        preference_changes=changes,
        quiet_hours_changes=args.get("quiet_hours") or {},
        default_start=config.rules.quiet_hours_default_start,
        default_end=config.rules.quiet_hours_default_end,
    )
    if args.get("privacy"):
        change_presence_visibility(
            request_session(),
            current_principal().user_id,
            PresenceVisibility(args["privacy"]["presence_visibility"]),
        )
    return ok(_as_response(_current_settings()))
