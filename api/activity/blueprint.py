"""The activity blueprint, on its own so that the route modules import it without importing
the package that imports them."""

from flask_smorest import Blueprint

blp = Blueprint("activity", __name__, description="What users do in the app, reported in batches.")
