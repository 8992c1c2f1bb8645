"""Locate (or start) the PostgreSQL and Redis servers the test suite runs against.

Order: DATABASE_URL / REDIS_URL from the environment, then the usual local default port, then an
embedded server (devtools.embedded) in a temp dir. Plain functions, for use by tests/conftest.py.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

StopCallback = Callable[[], None]


def _announce(message: str) -> None:
    print(f"\n*** [pulse tests] {message} ***", file=sys.stderr, flush=True)


def _pg_url(url: str, database: str | None = None) -> URL:
    """Parse a PostgreSQL URL; always the psycopg2 driver (SQLAlchemy 2.1's default for a bare
    postgresql:// is psycopg 3, which Pulse does not install)."""
    parsed = make_url(re.sub(r"^postgres://", "postgresql://", url))
    if not parsed.drivername.startswith("postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {parsed.render_as_string(hide_password=True)}")
    parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.set(database=database) if database is not None else parsed


def _pg_connect(url: str | URL, timeout: int = 5) -> Any:
    import psycopg2

    parsed = _pg_url(url) if isinstance(url, str) else url
    kwargs: dict[str, Any] = parsed.translate_connect_args(username="user", database="dbname")
    kwargs.update({k: v for k, v in parsed.query.items() if isinstance(v, str)})
    kwargs.setdefault("connect_timeout", timeout)
    return psycopg2.connect(**kwargs)


def _pg_answers(url: str, timeout: int) -> bool:
    import psycopg2

    try:
        _pg_connect(url, timeout).close()
    except psycopg2.Error:
        return False
    return True


def _redis_answers(url: str, timeout: float) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _embedded(kind: str, start: Callable[[Path], Any]) -> tuple[Any, StopCallback]:
    tmp = Path(tempfile.mkdtemp(prefix=f"pulse-test-{kind}-"))
    try:
        service = start(tmp / kind)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    def stop() -> None:
        service.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    return service, stop


def resolve_postgres_admin_url(
    default_url: str = DEFAULT_POSTGRES_URL,
) -> tuple[str, StopCallback | None]:
    """Return (URL of the ``postgres`` maintenance DB, stop callback or None).

    The callback is only returned for an embedded server started here; call it at session end.
    """
    env_url = os.environ.get("DATABASE_URL")
    if env_url:
        admin = _pg_url(env_url, "postgres")
        rendered = admin.render_as_string(hide_password=False)
        if not _pg_answers(rendered, timeout=5):
            raise RuntimeError(
                "DATABASE_URL is set but its server does not answer: "
                + admin.render_as_string(hide_password=True)
            )
        _announce(f"PostgreSQL: using DATABASE_URL server {admin.render_as_string()}")
        return rendered, None

    if _pg_answers(default_url, timeout=2):
        admin = _pg_url(default_url, "postgres")
        _announce(f"PostgreSQL: using local server {admin.render_as_string()}")
        return admin.render_as_string(hide_password=False), None

    from devtools.embedded import start_postgres

    service, stop = _embedded("postgres", start_postgres)
    _announce(
        f"PostgreSQL: nothing at {_pg_url(default_url).render_as_string()}, "
        f"started EMBEDDED server {service.admin_url} (data in {service.data_dir})"
    )
    return service.admin_url, stop


def resolve_redis_url(default_url: str = DEFAULT_REDIS_URL) -> tuple[str, StopCallback | None]:
    """Return (Redis URL, stop callback or None); same order as resolve_postgres_admin_url."""
    env_url = os.environ.get("REDIS_URL")
    if env_url:
        if not _redis_answers(env_url, timeout=5):
            raise RuntimeError(f"REDIS_URL is set but its server does not answer: {env_url}")
        _announce(f"Redis: using REDIS_URL server {env_url}")
        return env_url, None

    if _redis_answers(default_url, timeout=2):
        _announce(f"Redis: using local server {default_url}")
        return default_url, None

    from devtools.embedded import start_redis

    service, stop = _embedded("redis", start_redis)
    _announce(
        f"Redis: nothing at {default_url}, started EMBEDDED server {service.url} "
        f"(data in {service.data_dir})"
    )
    return service.url, stop


def _check_name(name: str) -> str:
    if not _DB_NAME.match(name):
        raise ValueError(f"invalid database name {name!r} (letters, digits, _; max 63)")
    return name


def create_database(admin_url: str, name: str, *, replace: bool = False) -> str:
    """Create database ``name`` on the admin URL's server and return its URL.

    If it already exists: raise, or drop and recreate it when ``replace`` is true.
    """
    from psycopg2 import sql

    _check_name(name)
    conn = _pg_connect(admin_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is not None:
                if not replace:
                    raise RuntimeError(f"database {name!r} already exists")
                _drop(cur, name)
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    return _pg_url(admin_url, name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting its other sessions first."""
    _check_name(name)
    conn = _pg_connect(admin_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            _drop(cur, name)
    finally:
        conn.close()


def _drop(cur: Any, name: str) -> None:
    from psycopg2 import sql

    ident = sql.Identifier(name)
    if cur.connection.server_version >= 130000:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        return
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
    if cur.fetchone() is None:
        return
    cur.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident))
    cur.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )
    cur.execute(sql.SQL("DROP DATABASE {}").format(ident))
