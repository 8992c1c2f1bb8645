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
from models.settings import (
    SETTING_COLUMNS,
    Defaults,
    UserSettings,
    read_settings,
    update_settings,
)
from runtime import current_runtime

SECURITY = [{"bearerAuth": []}]


class UnknownNotificationType(ApiError):
    status = 400
    code = "unknown_notification_type"


def _settings_limit() -> str:
    return current_runtime().settings.api.rate_limit_settings


def _as_response(user_settings: UserSettings) -> dict[str, Any]:
    quiet = user_settings.quiet_hours
    return {
        "settings": [
            {
                "notification_type": p.notification_type.value,
                **{f: getattr(p, f) for f in FLAGS},
                "quiet_hours_behavior": p.quiet_hours_behavior.value,
            }
            for p in user_settings.preferences
        ],
        "quiet_hours": {
            "start": quiet.start,
            "end": quiet.end,
            "timezone": quiet.timezone,
            "timezone_source": user_settings.timezone_source.value,
        },
        "privacy": {
            "presence_visibility": user_settings.presence_visibility,
            "show_previews": user_settings.show_previews,
        },
    }


def _defaults() -> Defaults:
    config = current_runtime().settings
    return Defaults(
        quiet_hours_start=config.rules.quiet_hours_default_start,
        quiet_hours_end=config.rules.quiet_hours_default_end,
        timezone=config.rules.default_timezone,
        presence_visibility=config.realtime.presence_visibility_default,
    )


def _current_settings() -> UserSettings:
    return read_settings(request_session(), current_principal().user_id, _defaults())


@blp.route("/settings", methods=["GET"])
@limiter.limit(_settings_limit)
@authenticated()
@blp.response(200, envelope(SettingsSchema))
@blp.doc(security=SECURITY)
def get_settings() -> dict[str, Any]:
    """Every notification type with defaults filled in, the quiet hours in the zone that
    applies (and where it comes from), and privacy."""
    return ok(_as_response(_current_settings()))


@blp.route("/settings", methods=["PUT"])
@limiter.limit(_settings_limit)
@authenticated()
@blp.arguments(SettingsChangeSchema)
@blp.response(200, envelope(SettingsSchema))
@blp.doc(security=SECURITY)
def put_settings(args: dict[str, Any]) -> dict[str, Any]:
    """Change some types' flags and quiet-hours behaviour, the quiet hours (a null timezone
    follows the device again) and privacy; what is not given stays as it is."""
    changes: dict[NotificationType, dict[str, bool | str]] = {}
    for item in args.get("settings") or []:
        name = item["notification_type"]
        if name not in values(NotificationType):
            raise UnknownNotificationType(
                f"Unknown notification type {name!r}.",
                details={"notification_type": name, "known": values(NotificationType)},
            )
        changes[NotificationType(name)] = {c: item[c] for c in SETTING_COLUMNS if c in item}
    privacy = args.get("privacy") or {}
    update_settings(
        request_session(),
        current_principal().user_id,
        preference_changes=changes,
        quiet_hours_changes=args.get("quiet_hours") or {},
        show_previews=privacy.get("show_previews"),
        defaults=_defaults(),
    )
    if "presence_visibility" in privacy:
        change_presence_visibility(
            request_session(),
            current_principal().user_id,
            PresenceVisibility(privacy["presence_visibility"]),
        )
    return ok(_as_response(_current_settings()))
