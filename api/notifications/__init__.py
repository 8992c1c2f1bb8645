"""The notifications API: device tokens and per-type settings with quiet hours."""

from flask_smorest import Blueprint

blp = Blueprint(
    "notifications",
    __name__,
    description="Device push tokens and notification settings.",
)

from api.notifications import send, settings, tokens  # noqa: E402,F401  (routes register on import)
