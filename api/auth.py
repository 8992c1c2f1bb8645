"""Bearer JWT authentication and role checks for HTTP requests.

The accepted algorithm is pinned by configuration; `alg: none` and every other
algorithm are refused. Token contents never reach a log line.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import jwt
from flask import g, request

from api.errors import Forbidden, Unauthorized
from core.catalog import Role
from core.config import Settings
from core.ids import USER_ID_RULE, is_user_id
from models.db import db
from models.users import ensure_user
from runtime import current_runtime

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: Role


def decode_token(token: str, settings: Settings) -> Principal:
    """Verify a JWT against the pinned algorithm and claims; raise Unauthorized naming why."""
    try:
        claims = jwt.decode(
            token,
            settings.auth.jwt_verification_key,
            algorithms=[settings.auth.jwt_algorithm],
            issuer=settings.auth.jwt_issuer,
            audience=settings.auth.jwt_audience,
            leeway=settings.auth.jwt_leeway_seconds,
            options={
                "require": ["exp", "sub"],
                "verify_aud": settings.auth.jwt_audience is not None,
                "verify_iss": settings.auth.jwt_issuer is not None,
            },
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired.", code="token_expired") from None
    except jwt.InvalidAlgorithmError:
        raise Unauthorized(
            f"The token's algorithm is not accepted (only {settings.auth.jwt_algorithm}).",
            code="invalid_token",
        ) from None
    except jwt.InvalidSignatureError:
        raise Unauthorized("The token's signature is not valid.", code="invalid_token") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"The token has no '{exc.claim}' claim.", code="invalid_token") from None
    except jwt.InvalidIssuerError:
        raise Unauthorized("The token's issuer is not accepted.", code="invalid_token") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized("The token's audience is not accepted.", code="invalid_token") from None
    except jwt.ImmatureSignatureError:
        raise Unauthorized("The token is not valid yet.", code="invalid_token") from None
    except jwt.PyJWTError:
        raise Unauthorized("The token is malformed.", code="invalid_token") from None
    subject = claims.get("sub")
    if not is_user_id(subject):
        raise Unauthorized(
            f"The token's 'sub' must be a user id ({USER_ID_RULE}).",
            code="invalid_token",
        )
    try:
        role = Role(claims.get("role") or Role.USER)
    except ValueError:
        raise Unauthorized(
            "The token's 'role' must be one of user, admin, service.", code="invalid_token"
        ) from None
    return Principal(user_id=subject, role=role)


def mint_token(
    settings: Settings,
    user_id: str,
    role: Role = Role.USER,
    ttl: timedelta = timedelta(hours=1),
    private_key: str | None = None,
) -> str:
    """Sign a token the API accepts (development and tests; production tokens come from auth)."""
    now = datetime.now(UTC)
    claims: dict[str, Any] = {"sub": user_id, "role": role.value, "iat": now, "exp": now + ttl}
    if settings.auth.jwt_issuer:
        claims["iss"] = settings.auth.jwt_issuer
    if settings.auth.jwt_audience:
        claims["aud"] = settings.auth.jwt_audience
    key = private_key or settings.auth.jwt_secret
    if not key:
        raise ValueError(f"{settings.auth.jwt_algorithm} tokens need a private key to be signed")
    return jwt.encode(claims, key, algorithm=settings.auth.jwt_algorithm)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def current_principal() -> Principal:
    """The caller, decoded once per request; Unauthorized when there is no valid token."""
    if "principal" not in g:
        token = bearer_token()
        if token is None:
            g.principal = Unauthorized(
                "Send 'Authorization: Bearer <token>'.", code="missing_token"
            )
        else:
            try:
                g.principal = decode_token(token, current_runtime().settings)
            except Unauthorized as exc:
                g.principal = exc
    if isinstance(g.principal, Unauthorized):
        raise g.principal
    return g.principal


def optional_principal() -> Principal | None:
    try:
        return current_principal()
    except Unauthorized:
        return None


# The roles of a signed-in person. An endpoint that acts for the caller's own devices,
# settings, inbox or presence (`authenticated()` with no roles) admits only these: a
# service token names a backend service, which has none of them.
SIGNED_IN_USER_ROLES: tuple[Role, ...] = (Role.USER, Role.ADMIN)
# For an endpoint any valid token may call (it checks what each role may see itself):
# `authenticated(*ANY_ROLE)`.
ANY_ROLE: tuple[Role, ...] = tuple(Role)


def authenticated(*roles: Role) -> Callable[[F], F]:
    """Require a valid token with one of `roles`; without roles, the endpoint acts for the
    signed-in user, and only SIGNED_IN_USER_ROLES may call it. Any other role is a 403
    `forbidden` naming the roles that may, before the view runs or a row is written."""
    allowed = roles or SIGNED_IN_USER_ROLES
    names = " or ".join(role.value for role in allowed)
    if roles:
        refusal = f"This needs the role {names}."
    else:
        refusal = (
            f"This endpoint acts for the signed-in user: only a token of role {names} "
            "may call it."
        )

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if principal.role not in allowed:
                raise Forbidden(
                    f"{refusal} This token's role is {principal.role.value}.",
                    details={
                        "role": principal.role.value,
                        "allowed_roles": [role.value for role in allowed],
                    },
                )
            if principal.role is not Role.SERVICE:
                # Its own short transaction: the user exists even if the view then fails.
                with db.session_scope() as session:
                    ensure_user(session, principal.user_id)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator
