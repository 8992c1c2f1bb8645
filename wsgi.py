"""The WSGI entry point for gunicorn (`wsgi:app`) and `flask --app wsgi`.

Loads an optional .env (development), then builds the app from the environment.
"""

from dotenv import load_dotenv

load_dotenv()

from api import create_app  # noqa: E402  (after .env is loaded)

app = create_app()
