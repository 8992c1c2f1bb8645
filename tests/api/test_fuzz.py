"""Schema-driven fuzzing: schemathesis reads the OpenAPI document the app serves and throws
valid and invalid requests at every operation; none may get a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api import create_app
from api.auth import mint_token
from core.catalog import Role
from core.config import load_settings
from runtime import APP_EXTENSION
from tests.factories import make_env


def served_openapi_document() -> dict:
    """The document as the app serves it (building an app opens no connection)."""
    offline = make_env("postgresql://nobody@127.0.0.1:1/none", "redis://127.0.0.1:1/0")
    return create_app(load_settings(offline)).test_client().get("/api/openapi.json").json


schema = schemathesis.openapi.from_dict(served_openapi_document())


@pytest.fixture
def fuzz_app(database_url, redis_url):
    env = make_env(
        database_url,
        redis_url,
        RATE_LIMIT_REGISTER_TOKEN="100000 per hour",
        RATE_LIMIT_SETTINGS="100000 per hour",
    )
    return create_app(load_settings(env))


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_5xx(case, fuzz_app):
    config = fuzz_app.extensions[APP_EXTENSION].settings
    for role in (Role.USER, Role.ADMIN):
        token = mint_token(config, "fuzz-user", role)
        response = case.call(app=fuzz_app, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code < 500, (case.method, case.path, response.text[:500])
        if response.headers.get("Content-Type", "").startswith("application/json"):
            assert "success" in response.json()
