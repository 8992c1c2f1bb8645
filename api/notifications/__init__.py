"""The notifications API: device tokens and per-type settings with quiet hours."""

from api.notifications import send, settings, tokens  # noqa: F401  (routes register on import)
from api.notifications.blueprint import blp

__all__ = ["blp"]
