"""The real-time HTTP API: gateway status for the caller, HTTP heartbeats for apps whose
socket sleeps, and backend events in (role service)."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint(
    "realtime",
    __name__,
    description="Real-time gateway status, heartbeats and backend events.",
)


from api.realtime import events, heartbeat, status  # noqa: E402,F401  (routes register on import)
