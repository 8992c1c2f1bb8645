"""Device token routes: register and unregister the caller's own push tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from api.auth import authenticated, current_principal
from api.envelope import envelope, ok
from api.errors import NotFound, ValidationFailed
from api.extensions import limiter, request_session
from api.notifications.blueprint import blp
from api.notifications.schemas import (
    DeviceListSchema,
    RegisterTokenSchema,
    TokenResultSchema,
    UnregisterTokenSchema,
)
from core.catalog import Platform, Provider, Role
from core.device_tokens import TokenCipher, TokenFormatError, infer_provider, validate_token
from models.tokens import find_own_token, list_tokens, register_token, unregister_token
from models.users import record_device_report
from runtime import current_runtime

SECURITY = [{"bearerAuth": []}]


def _cipher() -> TokenCipher:
    return current_runtime().cipher


def _register_limit() -> str:
    return current_runtime().settings.api.rate_limit_register_token


@blp.route("/register-token", methods=["POST"])
@limiter.limit(_register_limit)
@authenticated()
@blp.arguments(RegisterTokenSchema)
@blp.response(201, envelope(TokenResultSchema), description="A new token for this user.")
@blp.alt_response(200, schema=envelope(TokenResultSchema), description="Already registered.")
@blp.doc(security=SECURITY)
def register_device_token(args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Register the caller's device push token (idempotent), and the device's time zone and
    locale when given (the most recent device report wins; a zone chosen in the settings
    wins over it)."""
    platform = Platform(args["platform"])
    try:
        provider = (
            Provider(args["provider"]) if "provider" in args else infer_provider(args["token"])
        )
        token = validate_token(provider, platform, args["token"])
    except TokenFormatError as exc:
        raise ValidationFailed(
            f"Invalid token: {exc}.", details={"fields": {"token": [str(exc)]}}
        ) from None
    session = request_session()
    user_id = current_principal().user_id
    now = datetime.now(UTC)
    # The device's zone and locale, if it sent them: in the same transaction, which
    # register_token commits.
    record_device_report(
        session, user_id, timezone=args.get("timezone"), locale=args.get("locale"), reported_at=now
    )
    registration = register_token(
        session,
        _cipher(),
        user_id=user_id,
        token=token,
        platform=platform,
        provider=provider,
        device_id=args.get("device_id"),
        app_version=args.get("app_version"),
        now=now,
    )
    message = (
        "Device token registered successfully"
        if registration.created
        else "Device token already registered"
    )
    return ok({"message": message, "token_id": registration.token_id}), (
        201 if registration.created else 200
    )


@blp.route("/unregister-token", methods=["DELETE"])
@authenticated()
@blp.arguments(UnregisterTokenSchema)
@blp.response(200, envelope(TokenResultSchema))
@blp.doc(security=SECURITY)
def unregister_device_token(args: dict[str, Any]) -> dict[str, Any]:
    """Unregister one of the caller's device tokens, by value or by id (idempotent)."""
    session = request_session()
    push_token = find_own_token(
        session,
        _cipher(),
        current_principal().user_id,
        token=args.get("token"),
        token_id=args.get("token_id"),
    )
    if push_token is None:
        raise NotFound("You have no such device token.")
    unregister_token(session, push_token.id, datetime.now(UTC))
    return ok({"message": "Device token unregistered successfully", "token_id": push_token.id})


@blp.route("/users/<string:user_id>/devices", methods=["GET"])
@authenticated(Role.ADMIN, Role.SERVICE)
@blp.response(200, envelope(DeviceListSchema))
@blp.doc(security=SECURITY)
def list_user_devices(user_id: str) -> dict[str, Any]:
    """A user's registered devices, for support and operators (admin or service)."""
    return ok({"user_id": user_id, "devices": list_tokens(request_session(), user_id)})
