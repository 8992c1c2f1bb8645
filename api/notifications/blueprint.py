"""The notifications blueprint, on its own so that the route modules import it without importing
the package that imports them."""

from flask_smorest import Blueprint

blp = Blueprint(
    "notifications",
    __name__,
    description="Device push tokens and notification settings.",
)
