"""The activity HTTP API: users (and services on their behalf) report what they did."""

from api.activity import report  # noqa: F401  (routes register on import)
from api.activity.blueprint import blp

__all__ = ["blp"]
