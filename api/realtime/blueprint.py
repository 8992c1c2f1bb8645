"""The realtime blueprint, on its own so that the route modules import it without importing
the package that imports them."""

from flask_smorest import Blueprint

blp = Blueprint(
    "realtime",
    __name__,
    description="Real-time gateway status, heartbeats and backend events.",
)
