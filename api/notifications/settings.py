"""Settings routes: the caller's per-type notification flags and quiet hours."""

from __future__ import annotations

from typing import Any

from flask import current_app

from api.auth import authenticated, current_principal
from api.envelope import envelope, ok
from api.errors import ApiError
from api.extensions import limiter, request_session
from api.notifications import blp
from api.notifications.schemas import SettingsChangeSchema, SettingsSchema
from core.catalog import NotificationType, values
from core.preferences import FLAGS
from models.settings import UserSettings, read_settings, update_settings

SECURITY = [{"bearerAuth": []}]


class UnknownNotificationType(ApiError):
    status = 400
    code = "unknown_notification_type"


def _settings_limit() -> str:
    return current_app.config["PULSE_SETTINGS"].rate_limit_settings


def _as_response(user_settings: UserSettings) -> dict[str, Any]:
    quiet = user_settings.quiet_hours
    return {
        "settings": [
            {"notification_type": p.notification_type.value, **{f: getattr(p, f) for f in FLAGS}}
            for p in user_settings.preferences
        ],
        "quiet_hours": {"start": quiet.start, "end": quiet.end, "timezone": quiet.timezone},
    }


def _current_settings() -> UserSettings:
    config = current_app.config["PULSE_SETTINGS"]
    return read_settings(
        request_session(),
        current_principal().user_id,
        config.quiet_hours_default_start,
        config.quiet_hours_default_end,
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
    config = current_app.config["PULSE_SETTINGS"]
    update_settings(
        request_session(),
        current_principal().user_id,
        preference_changes=changes,
        quiet_hours_changes=args.get("quiet_hours") or {},
        default_start=config.quiet_hours_default_start,
        default_end=config.quiet_hours_default_end,
    )
    return ok(_as_response(_current_settings()))
