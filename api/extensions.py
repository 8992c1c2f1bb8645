"""The app's extensions, created once here and bound to an app in create_app.

No extension opens a connection at import time.
"""

from __future__ import annotations

import logging

from flask import g, request
from flask_limiter import Limiter
from flask_smorest import Api
from flask_socketio import SocketIO
from sqlalchemy.orm import Session

from api.auth import optional_principal
from api.envelope import ErrorEnvelopeSchema
from models.db import db

log = logging.getLogger(__name__)


class PulseApi(Api):
    """flask-smorest's Api with Pulse's error envelope (api.errors owns error handling)."""

    ERROR_SCHEMA = ErrorEnvelopeSchema

    def _register_error_handlers(self) -> None:
        pass


def rate_limit_key() -> str:
    """Limits are per user; a request without a valid token is limited by address."""
    principal = optional_principal()
    if principal is not None:
        return f"user:{principal.user_id}"
    return f"addr:{request.remote_addr or 'unknown'}"


api = PulseApi()
limiter = Limiter(key_func=rate_limit_key)
# Bound only where the app serves /socket.io (the gateway, and the API in development).
socketio = SocketIO()


def request_session() -> Session:
    """The request's database session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = db.session()
    return g.db_session


def close_request_session(_exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
