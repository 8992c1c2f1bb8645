"""The Flask app factory: configuration, extensions, error handling, blueprints; nothing else.

`create_app(settings)` builds an app; tests build their own with their own settings.
"""

from __future__ import annotations

import logging

from flask import Flask

from api.activity import blp as activity_blp
from api.cli import register_cli
from api.errors import register_error_handlers
from api.extensions import api, close_request_session, limiter
from api.health import blp as health_blp
from api.notifications import blp as notifications_blp
from api.realtime import blp as realtime_blp
from api.requests import drop_retry_after_unless_limited, require_json_body
from api.sockets import init_gateway
from core.config import Settings, load_settings
from core.logs import configure_logging
from runtime import APP_EXTENSION, Process, build

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    realtime: bool = False,
    async_mode: str = "threading",
) -> Flask:
    """`realtime`: serve Socket.IO at /socket.io as well (the gateway process, gateway.py,
    builds its app so); `async_mode`: Flask-SocketIO's (gevent in the gateway)."""
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    app = Flask("pulse")
    app.json.sort_keys = False  # keep "success" before "data", as in the seed's examples
    app.config.update(
        MAX_CONTENT_LENGTH=settings.api.max_request_bytes,
        API_TITLE="Pulse",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/",
        RATELIMIT_STORAGE_URI=settings.api.rate_limit_storage_url,
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 1, "socket_timeout": 1},
        RATELIMIT_KEY_PREFIX=f"{settings.storage.redis_key_prefix}ratelimit",
        RATELIMIT_STRATEGY="moving-window",
        RATELIMIT_HEADERS_ENABLED=True,
        # Fail open: if Redis is down the API keeps answering (Flask-Limiter logs it).
        RATELIMIT_SWALLOW_ERRORS=True,
    )
    app.extensions[APP_EXTENSION] = build(settings, Process.GATEWAY if realtime else Process.API)

    register_error_handlers(app)
    app.before_request(require_json_body)
    app.after_request(drop_retry_after_unless_limited)
    app.teardown_appcontext(close_request_session)
    api.init_app(
        app,
        spec_kwargs={
            "info": {"description": "Pulse: push notifications and real-time events."},
        },
    )
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    limiter.init_app(app)

    app.register_blueprint(health_blp)
    api.register_blueprint(notifications_blp, url_prefix="/api/v1/notifications")
    api.register_blueprint(realtime_blp, url_prefix="/api/v1/realtime")
    api.register_blueprint(activity_blp, url_prefix="/api/v1/activity")
    register_cli(app)
    if realtime:
        init_gateway(app, app.extensions[APP_EXTENSION], async_mode)
    return app
