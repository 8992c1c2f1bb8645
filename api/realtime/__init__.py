"""The real-time HTTP API: gateway status for the caller, HTTP heartbeats for apps whose
socket sleeps, and backend events in (role service)."""

from __future__ import annotations

from flask import current_app
from flask_smorest import Blueprint

from jobs.realtime_context import RealtimeContext, context_for

blp = Blueprint(
    "realtime",
    __name__,
    description="Real-time gateway status, heartbeats and backend events.",
)


def realtime_context() -> RealtimeContext:
    """This app's real-time context (Redis stores and the external emitter)."""
    return context_for(current_app.config["PULSE_SETTINGS"], current_app.extensions["pulse.redis"])


from api.realtime import events, heartbeat, status  # noqa: E402,F401  (routes register on import)
