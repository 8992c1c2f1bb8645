"""The real-time HTTP API: gateway status for the caller, HTTP heartbeats for apps whose
socket sleeps, and backend events in (role service)."""

from api.realtime import events, heartbeat, status  # noqa: F401  (routes register on import)
from api.realtime.blueprint import blp

__all__ = ["blp"]
