"""Whether Redis lets this process in: the start-up check of REDIS_URL's credentials and TLS.

Every Redis connection is made from the one REDIS_URL: its password (`redis://:secret@host`,
or `redis://user:secret@host` for an ACL user) and TLS (`rediss://`, with redis-py's `ssl_*`
query parameters: `ssl_ca_certs=`, `ssl_certfile=`, `ssl_keyfile=`) reach RQ, the rate
limits and the Socket.IO message queue alike (docs/configuration.md, "Redis connection").

A Redis that does not answer is an outage, which every process lives through; a Redis that
answers and refuses us is a configuration error, which waiting never fixes (and which the
rate limits, failing open, would hide). `check_access` tells them apart at start-up.
"""

from __future__ import annotations

import logging
import ssl
import time
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    NoPermissionError,
)

# Redis answered and refused REDIS_URL's user or password.
_REFUSED = (AuthenticationError, AuthenticationWrongNumberOfArgsError, NoPermissionError)

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0


class RedisAccessError(RuntimeError):
    """REDIS_URL cannot work as it is: Redis answered and refused it (a wrong password or
    user, a user without the rights Pulse needs, a TLS certificate one side does not
    accept), or redis-py does not take one of its query parameters."""


# The server closed the TLS connection: a Redis restarting under us does it once; a Redis
# that wants a client certificate does it every time (or sends an alert: refused).
_CLOSED_TLS = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)
TLS_CLOSE_ATTEMPTS = 3
TLS_CLOSE_PAUSE_SECONDS = 0.2


def redacted(url: str) -> str:
    """`url` with its password replaced by ***, for logs and error messages."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def check_access(url: str) -> None:
    """PING Redis, on a connection of its own, with `url`'s credentials and TLS.

    Raises RedisAccessError (naming the URL without its password) if Redis refuses them
    (authentication, permissions, TLS) or redis-py cannot use the URL. A Redis that does
    not answer is only logged: the process starts and copes as it does with any outage."""
    client = redis.Redis.from_url(
        url,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
        retry_on_timeout=False,
    )
    try:
        _ping(client, url)
    finally:
        client.close()


def _ping(client: redis.Redis, url: str) -> None:
    for attempt in range(1, TLS_CLOSE_ATTEMPTS + 1):
        try:
            client.ping()
            return
        except TypeError as exc:  # a query parameter that the connection class does not take
            raise RedisAccessError(
                f"REDIS_URL {redacted(url)} has a query parameter redis-py does not take "
                f"({exc}); the ssl_* ones need rediss://"
            ) from None
        except _REFUSED as exc:
            raise RedisAccessError(
                f"Redis at {redacted(url)} refused REDIS_URL's credentials "
                f"({type(exc).__name__}: {exc}); check its password (redis://:PASSWORD@host) "
                "or its user (redis://USER:PASSWORD@host)"
            ) from None
        except redis.RedisError as exc:
            tls = _tls_failure(exc)
            # A server that asks for a client certificate and gets none may close the TLS
            # connection without saying why; a restart does that only once.
            if tls == "refused" or (tls == "closed" and attempt == TLS_CLOSE_ATTEMPTS):
                raise RedisAccessError(
                    f"TLS with Redis at {redacted(url)} failed ({exc}); check REDIS_URL's "
                    "ssl_ca_certs (the CA that signed Redis's certificate) and, if Redis asks "
                    "for a client certificate, ssl_certfile and ssl_keyfile"
                ) from None
            if tls is None:
                log.warning(
                    "event=redis_unreachable_at_start url=%s error_type=%s",
                    redacted(url),
                    type(exc).__name__,
                )
                return
            time.sleep(TLS_CLOSE_PAUSE_SECONDS)


def _tls_failure(exc: BaseException) -> str | None:
    """What TLS did to the connection: `refused` (a certificate refused, an alert), `closed`
    (the server closed it), or None (not TLS)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return "closed" if isinstance(seen, _CLOSED_TLS) else "refused"
        seen = seen.__cause__ or seen.__context__
    return None
