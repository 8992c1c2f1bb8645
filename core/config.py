"""Pulse's settings, read once from the environment into one typed object.

`Settings` holds one frozen group per concern: storage, auth, providers, delivery, rules,
realtime, api and retention (docs/configuration.md lists every variable). Each variable is read in
exactly one place and validated at start-up; a bad one stops the process with a message
that names it. Secrets never have a default: development gets its own generated `.env`
from `make run`. Variables renamed to carry their unit (RENAMED) still work under their
old name for one release, with a warning logged once per process.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.serialization import load_pem_public_key

ENVIRONMENTS = ("development", "test", "production")
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
PUBLIC_KEY_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
_HH_MM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

log = logging.getLogger("core.config")


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""


def parse_hh_mm(value: str) -> time:
    """'22:00' -> time(22, 0); raises ValueError on anything else."""
    match = _HH_MM.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a time of day in HH:MM (00:00 to 23:59)")
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class StorageSettings:
    database_url: str
    redis_url: str
    redis_key_prefix: str


@dataclass(frozen=True)
class AuthSettings:
    jwt_algorithm: str
    jwt_secret: str | None
    jwt_public_key: str | None
    jwt_issuer: str | None
    jwt_audience: str | None
    jwt_leeway_seconds: int
    token_encryption_keys: tuple[str, ...]
    token_hash_key: str

    @property
    def jwt_verification_key(self) -> str:
        key = self.jwt_public_key if self.jwt_algorithm in PUBLIC_KEY_ALGORITHMS else None
        return key or self.jwt_secret or ""


@dataclass(frozen=True)
class ProviderSettings:
    expo_access_token: str | None
    expo_host: str
    expo_rate_per_second: int
    expo_receipt_delay_seconds: int
    apns_key_id: str | None
    apns_team_id: str | None
    apns_key_file: str | None
    apns_host: str | None
    apns_port: int
    apns_use_sandbox: bool
    apns_ca_file: str | None
    apns_topic: str | None
    fcm_service_account_file: str | None
    fcm_project_id: str | None
    fcm_endpoint: str


@dataclass(frozen=True)
class DeliverySettings:
    batch_size: int
    processing_lease_seconds: int
    outbox_reenqueue_after_seconds: int
    outbox_sweep_interval_seconds: int
    max_attempts: int
    concurrency: int
    retry_base_seconds: float


@dataclass(frozen=True)
class RuleSettings:
    enabled: bool
    batch_window_seconds: int
    quiet_hours_default_start: time
    quiet_hours_default_end: time
    quiet_hours_spread_seconds: int
    cap_per_day: int
    cap_per_type_hour: int
    # The zone of a user Pulse has never heard from (no device report, no setting).
    default_timezone: str


@dataclass(frozen=True)
class RealtimeSettings:
    presence_update_interval_ms: int
    heartbeat_interval_ms: int
    away_after_seconds: int
    offline_after_seconds: int
    typing_timeout_seconds: int
    typing_progress_interval_ms: int
    allowed_origins: tuple[str, ...] | str | None
    socketio_channel: str
    # The gateways' pub/sub; REDIS_URL unless SOCKETIO_MESSAGE_QUEUE splits it off.
    message_queue_url: str
    connection_ttl_seconds: int
    sweep_interval_ms: int
    event_rate_per_second: int
    event_burst: int
    max_message_bytes: int
    # Who sees a user's presence until the user chooses: matches (the default) or everyone.
    presence_visibility_default: str
    # presence_subscribe to users outside the caller's matches, per user and clock hour.
    stranger_subscriptions_per_hour: int


@dataclass(frozen=True)
class ApiSettings:
    # Flask-Limiter's counters; REDIS_URL unless RATELIMIT_STORAGE_URL splits them off.
    rate_limit_storage_url: str
    max_request_bytes: int
    rate_limit_register_token: str
    rate_limit_settings: str
    rate_limit_activity: str


@dataclass(frozen=True)
class RetentionSettings:
    """How long rows are kept (core.retention turns these into cut-offs)."""

    notification_days: int  # notification_queue with its deliveries, and notification_sends
    realtime_events_days: int  # processed realtime_events
    activity_days: int  # user_activity
    token_stale_days: int  # an active token not used for this long is deactivated (stale)


@dataclass(frozen=True)
class Settings:
    env: str
    log_level: str
    storage: StorageSettings
    auth: AuthSettings
    providers: ProviderSettings
    delivery: DeliverySettings
    rules: RuleSettings
    realtime: RealtimeSettings
    api: ApiSettings
    retention: RetentionSettings

    @property
    def is_development(self) -> bool:
        return self.env == "development"


# Variables renamed to carry their unit: new name -> old name. The old name still works
# for one release, with a warning logged once per process; the new name wins if both are set.
RENAMED = {
    "NOTIFICATION_BATCH_WINDOW_SECONDS": "NOTIFICATION_BATCH_WINDOW",
    "OUTBOX_REENQUEUE_AFTER_SECONDS": "OUTBOX_REENQUEUE_AFTER",
    "OUTBOX_SWEEP_INTERVAL_SECONDS": "OUTBOX_SWEEP_INTERVAL",
    "EXPO_RECEIPT_DELAY_SECONDS": "EXPO_RECEIPT_DELAY",
    "AWAY_AFTER_SECONDS": "AWAY_AFTER",
    "OFFLINE_AFTER_SECONDS": "OFFLINE_AFTER",
    "TYPING_TIMEOUT_SECONDS": "TYPING_TIMEOUT",
    "TYPING_PROGRESS_INTERVAL_MS": "TYPING_PROGRESS_INTERVAL",
    "REALTIME_CONNECTION_TTL_SECONDS": "REALTIME_CONNECTION_TTL",
    "REALTIME_SWEEP_INTERVAL_MS": "REALTIME_SWEEP_INTERVAL",
    "SOCKET_EVENT_RATE_PER_SECOND": "SOCKET_EVENT_RATE",
}
# Old names whose deprecation was already logged by this process.
_deprecations_logged: set[str] = set()


def _deprecated(old: str, message: str) -> None:
    if old not in _deprecations_logged:
        _deprecations_logged.add(old)
        log.warning(message)


class _Reader:
    """Reads typed values from a mapping; each error names the variable the user set."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def lookup(self, name: str) -> tuple[str, str | None]:
        """(the name the value came from, the stripped value or None if unset or blank).

        For a renamed variable, the old name is used when the new one is unset."""
        value = self._get(name)
        old = RENAMED.get(name)
        if old is None:
            return name, value
        old_value = self._get(old)
        if old_value is None:
            return name, value
        if value is not None:
            _deprecated(old, f"{old} is deprecated and ignored because {name} is also set")
            return name, value
        _deprecated(old, f"{old} is deprecated and will be removed in the next release: use {name}")
        return old, old_value

    def _get(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def raw(self, name: str) -> str | None:
        return self.lookup(name)[1]

    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        return default if value is None else value

    def required(self, name: str, why: str) -> str:
        value = self.raw(name)
        if value is None:
            raise ConfigError(f"{name} is not set: {why}")
        return value

    def int(self, name: str, default: int, minimum: int = 0) -> int:
        used, value = self.lookup(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{used}={value!r} is not a whole number") from None
        if number < minimum:
            raise ConfigError(f"{used}={number} must be at least {minimum}")
        return number

    def bool(self, name: str, default: bool) -> bool:
        used, value = self.lookup(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{used}={value!r} is not a boolean (true/false)")

    def timezone(self, name: str, default: str) -> str:
        value = self.str(name, default) or default
        try:
            ZoneInfo(value)
        except (ValueError, ZoneInfoNotFoundError):
            raise ConfigError(f"{name}={value!r} is not an IANA time zone name") from None
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = (self.str(name, default) or default).lower()
        if value not in choices:
            raise ConfigError(f"{name}={value!r} must be one of {', '.join(choices)}")
        return value

    def time(self, name: str, default: str) -> time:
        used, value = self.lookup(name)
        try:
            return parse_hh_mm(value or default)
        except ValueError as exc:
            raise ConfigError(f"{used}: {exc}") from None

    def url(self, name: str, default: str | None, schemes: tuple[str, ...]) -> str | None:
        used, value = self.lookup(name)
        value = default if value is None else value
        if value is not None and not value.startswith(tuple(f"{s}://" for s in schemes)):
            raise ConfigError(f"{used} must be a URL starting with one of {schemes}")
        return value

    def file(self, name: str) -> str | None:
        used, value = self.lookup(name)
        if value is not None and not Path(value).is_file():
            raise ConfigError(f"{used}={value!r}: no such file")
        return value


def _fernet_keys(reader: _Reader) -> tuple[str, ...]:
    raw = reader.required(
        "TOKEN_ENCRYPTION_KEY",
        "device tokens are encrypted at rest; generate a key with `python -c "
        "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`",
    )
    keys = tuple(part.strip() for part in raw.split(",") if part.strip())
    for index, key in enumerate(keys):
        try:
            Fernet(key)
        except ValueError:
            raise ConfigError(
                f"TOKEN_ENCRYPTION_KEY: key #{index + 1} is not a Fernet key "
                "(32 url-safe base64-encoded bytes)"
            ) from None
    return keys


def _jwt(reader: _Reader) -> tuple[str, str | None, str | None]:
    algorithm = (reader.str("JWT_ALGORITHM", "HS256") or "HS256").upper()
    if algorithm in HMAC_ALGORITHMS:
        secret = reader.required("JWT_SECRET", f"{algorithm} tokens are verified with it")
        if len(secret) < 32:
            raise ConfigError("JWT_SECRET must be at least 32 characters long")
        return algorithm, secret, None
    if algorithm in PUBLIC_KEY_ALGORITHMS:
        public_key = reader.required("JWT_PUBLIC_KEY", f"{algorithm} tokens are verified with it")
        if not public_key.startswith("-----BEGIN") and Path(public_key).is_file():
            public_key = Path(public_key).read_text()
        try:
            load_pem_public_key(public_key.encode())
        except ValueError:
            raise ConfigError("JWT_PUBLIC_KEY is not a PEM public key (or a path to one)") from None
        return algorithm, reader.str("JWT_SECRET"), public_key
    raise ConfigError(
        f"JWT_ALGORITHM={algorithm!r} is not accepted; use one of "
        f"{', '.join(HMAC_ALGORITHMS + PUBLIC_KEY_ALGORITHMS)}"
    )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from `env` (default: os.environ); each variable is read once.

    Raises ConfigError naming the bad variable.
    """
    reader = _Reader(os.environ if env is None else env)
    environment = (reader.str("PULSE_ENV", "production") or "production").lower()
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"PULSE_ENV={environment!r} must be one of {', '.join(ENVIRONMENTS)}")
    auth = _auth(reader)
    providers = _providers(reader)
    storage = _storage(reader, environment)
    return Settings(
        env=environment,
        log_level=(reader.str("LOG_LEVEL", "INFO") or "INFO").upper(),
        storage=storage,
        auth=auth,
        providers=providers,
        delivery=_delivery(reader),
        rules=_rules(reader),
        realtime=_realtime(reader, storage),
        api=_api(reader, storage),
        retention=_retention(reader),
    )


def _storage(reader: _Reader, environment: str) -> StorageSettings:
    """In development, DATABASE_URL / REDIS_URL default to the embedded servers that
    `make run` starts on PULSE_EMBEDDED_PG_PORT / PULSE_EMBEDDED_REDIS_PORT."""
    development = environment == "development"
    database_url = reader.url(
        "DATABASE_URL", None, ("postgresql", "postgresql+psycopg2", "postgres")
    )
    if database_url is None and development:
        port = reader.int("PULSE_EMBEDDED_PG_PORT", 0, minimum=1)
        if port:
            database_url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/pulse"
    redis_url = reader.url("REDIS_URL", None, ("redis", "rediss", "unix"))
    if redis_url is None and development:
        port = reader.int("PULSE_EMBEDDED_REDIS_PORT", 0, minimum=1)
        if port:
            redis_url = f"redis://127.0.0.1:{port}/0"
    return StorageSettings(
        database_url=database_url
        or _missing("DATABASE_URL", "the PostgreSQL URL, e.g. postgresql://user@host:5432/pulse"),
        redis_url=redis_url
        or _missing("REDIS_URL", "the Redis URL, e.g. redis://127.0.0.1:6379/0"),
        redis_key_prefix=reader.str("REDIS_KEY_PREFIX", "pulse:") or "pulse:",
    )


def _auth(reader: _Reader) -> AuthSettings:
    algorithm, secret, public_key = _jwt(reader)
    token_hash_key = reader.required(
        "TOKEN_HASH_KEY", "device tokens are looked up by a keyed hash made with it"
    )
    if len(token_hash_key) < 16:
        raise ConfigError("TOKEN_HASH_KEY must be at least 16 characters long")
    return AuthSettings(
        jwt_algorithm=algorithm,
        jwt_secret=secret,
        jwt_public_key=public_key,
        jwt_issuer=reader.str("JWT_ISSUER"),
        jwt_audience=reader.str("JWT_AUDIENCE"),
        jwt_leeway_seconds=reader.int("JWT_LEEWAY_SECONDS", 30),
        token_encryption_keys=_fernet_keys(reader),
        token_hash_key=token_hash_key,
    )


def _providers(reader: _Reader) -> ProviderSettings:
    fcm_service_account_file = reader.file("FCM_SERVICE_ACCOUNT_FILE")
    if reader.raw("GOOGLE_FCM_SERVER_KEY") and not fcm_service_account_file:
        # The legacy FCM API was shut down in 2024; the name is kept so that old
        # deployments fail loudly instead of silently not sending to Android.
        raise ConfigError(
            "GOOGLE_FCM_SERVER_KEY is set but the legacy FCM API it belongs to was shut down in "
            "2024: set FCM_SERVICE_ACCOUNT_FILE (an FCM HTTP v1 service-account JSON) instead"
        )
    return ProviderSettings(
        expo_access_token=reader.str("EXPO_PUSH_ACCESS_TOKEN"),
        expo_host=reader.url("EXPO_PUSH_HOST", "https://exp.host", ("http", "https"))
        or "https://exp.host",
        expo_rate_per_second=reader.int("EXPO_RATE_PER_SECOND", 600, minimum=1),
        expo_receipt_delay_seconds=reader.int("EXPO_RECEIPT_DELAY_SECONDS", 900),
        apns_key_id=reader.str("APPLE_PUSH_KEY_ID"),
        apns_team_id=reader.str("APPLE_PUSH_TEAM_ID"),
        apns_key_file=reader.file("APPLE_PUSH_KEY_FILE"),
        apns_host=reader.str("APNS_HOST"),
        apns_port=reader.int("APNS_PORT", 443, minimum=1),
        apns_use_sandbox=reader.bool("APNS_USE_SANDBOX", False),
        apns_ca_file=reader.file("APNS_CA_FILE"),
        apns_topic=reader.str("APNS_TOPIC"),
        fcm_service_account_file=fcm_service_account_file,
        fcm_project_id=reader.str("FCM_PROJECT_ID"),
        fcm_endpoint=reader.url("FCM_ENDPOINT", "https://fcm.googleapis.com", ("http", "https"))
        or "https://fcm.googleapis.com",
    )


def _delivery(reader: _Reader) -> DeliverySettings:
    return DeliverySettings(
        batch_size=reader.int("NOTIFICATION_BATCH_SIZE", 400, minimum=1),
        processing_lease_seconds=reader.int("PROCESSING_LEASE_SECONDS", 120, minimum=1),
        outbox_reenqueue_after_seconds=reader.int("OUTBOX_REENQUEUE_AFTER_SECONDS", 60),
        outbox_sweep_interval_seconds=reader.int("OUTBOX_SWEEP_INTERVAL_SECONDS", 5, minimum=1),
        max_attempts=reader.int("DELIVERY_MAX_ATTEMPTS", 5, minimum=1),
        concurrency=reader.int("DELIVERY_CONCURRENCY", 4, minimum=1),
        retry_base_seconds=float(reader.int("RETRY_BASE_SECONDS", 2, minimum=1)),
    )


def _rules(reader: _Reader) -> RuleSettings:
    return RuleSettings(
        enabled=reader.bool("DELIVERY_RULES", True),
        batch_window_seconds=reader.int("NOTIFICATION_BATCH_WINDOW_SECONDS", 300),
        quiet_hours_default_start=reader.time("QUIET_HOURS_DEFAULT_START", "22:00"),
        quiet_hours_default_end=reader.time("QUIET_HOURS_DEFAULT_END", "08:00"),
        quiet_hours_spread_seconds=reader.int("QUIET_HOURS_SPREAD_SECONDS", 900),
        cap_per_day=reader.int("FREQUENCY_CAP_PER_DAY", 10, minimum=1),
        cap_per_type_hour=reader.int("FREQUENCY_CAP_PER_TYPE_HOUR", 3, minimum=1),
        default_timezone=reader.timezone("DEFAULT_TIMEZONE", "UTC"),
    )


def _realtime(reader: _Reader, storage: StorageSettings) -> RealtimeSettings:
    """The gateway's variables: presence timers, typing, origins, the message queue."""
    heartbeat_ms = reader.int("HEARTBEAT_INTERVAL", 30000, minimum=1)
    redis_key_prefix = storage.redis_key_prefix
    return RealtimeSettings(
        presence_update_interval_ms=reader.int("PRESENCE_UPDATE_INTERVAL", 30000, minimum=1),
        heartbeat_interval_ms=heartbeat_ms,
        away_after_seconds=reader.int("AWAY_AFTER_SECONDS", 300, minimum=1),
        offline_after_seconds=reader.int("OFFLINE_AFTER_SECONDS", 1800, minimum=1),
        typing_timeout_seconds=reader.int("TYPING_TIMEOUT_SECONDS", 10, minimum=1),
        typing_progress_interval_ms=reader.int("TYPING_PROGRESS_INTERVAL_MS", 500),
        allowed_origins=_origins(reader.str("REALTIME_ALLOWED_ORIGINS")),
        socketio_channel=reader.str("SOCKETIO_CHANNEL", f"{redis_key_prefix}socketio")
        or f"{redis_key_prefix}socketio",
        message_queue_url=reader.url(
            "SOCKETIO_MESSAGE_QUEUE", storage.redis_url, ("redis", "rediss", "unix")
        )
        or storage.redis_url,
        # Three missed heartbeats (and never less than engine.io's own ping timeout).
        connection_ttl_seconds=reader.int(
            "REALTIME_CONNECTION_TTL_SECONDS", max(90, 3 * heartbeat_ms // 1000), minimum=5
        ),
        sweep_interval_ms=reader.int("REALTIME_SWEEP_INTERVAL_MS", 250, minimum=10),
        event_rate_per_second=reader.int("SOCKET_EVENT_RATE_PER_SECOND", 20, minimum=1),
        event_burst=reader.int("SOCKET_EVENT_BURST", 40, minimum=1),
        max_message_bytes=reader.int("SOCKET_MAX_MESSAGE_BYTES", 64 * 1024, minimum=1024),
        presence_visibility_default=reader.choice(
            "PRESENCE_VISIBILITY_DEFAULT", "matches", ("matches", "everyone")
        ),
        stranger_subscriptions_per_hour=reader.int(
            "PRESENCE_STRANGER_SUBSCRIPTIONS_PER_HOUR", 100, minimum=0
        ),
    )


def _api(reader: _Reader, storage: StorageSettings) -> ApiSettings:
    return ApiSettings(
        rate_limit_storage_url=reader.url(
            "RATELIMIT_STORAGE_URL", storage.redis_url, ("redis", "rediss", "unix")
        )
        or storage.redis_url,
        max_request_bytes=reader.int("MAX_REQUEST_BYTES", 1024 * 1024, minimum=1024),
        rate_limit_register_token=reader.str("RATE_LIMIT_REGISTER_TOKEN", "10 per hour")
        or "10 per hour",
        rate_limit_settings=reader.str("RATE_LIMIT_SETTINGS", "20 per hour") or "20 per hour",
        rate_limit_activity=reader.str("RATE_LIMIT_ACTIVITY", "120 per minute")
        or "120 per minute",
    )


def _retention(reader: _Reader) -> RetentionSettings:
    return RetentionSettings(
        notification_days=reader.int("NOTIFICATION_RETENTION_DAYS", 90, minimum=1),
        realtime_events_days=reader.int("REALTIME_EVENTS_RETENTION_DAYS", 7, minimum=1),
        activity_days=reader.int("ACTIVITY_RETENTION_DAYS", 30, minimum=1),
        # Google's guidance for FCM: a token unused for 270 days is stale.
        token_stale_days=reader.int("TOKEN_STALE_DAYS", 270, minimum=1),
    )


def _origins(raw: str | None) -> tuple[str, ...] | str | None:
    """REALTIME_ALLOWED_ORIGINS: unset = same origin only (apps that send no Origin are
    always let in), "*" = any, else a comma-separated list of origins."""
    if raw is None:
        return None
    if raw == "*":
        return "*"
    origins = tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    for origin in origins:
        if not re.match(r"^https?://[^/\s]+$", origin):
            raise ConfigError(
                f"REALTIME_ALLOWED_ORIGINS: {origin!r} is not an origin like https://app.example"
            )
    return origins


def _missing(name: str, what: str) -> str:
    raise ConfigError(f"{name} is not set: {what}")
