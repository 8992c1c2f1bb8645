"""The notifications API: device tokens and per-type settings with quiet hours."""

# The route modules register their routes on import.
from api.notifications import send, settings, timezones, tokens  # noqa: F401
from api.notifications.blueprint import blp

__all__ = ["blp"]
