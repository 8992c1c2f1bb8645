"""Embedded PostgreSQL/Redis really start, persist data across restarts and stop cleanly."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg2
import pytest
import redis
import sqlalchemy as sa

from devtools.embedded import free_port, start_postgres, start_redis
from tests.services import (
    create_database,
    drop_database,
    resolve_postgres_admin_url,
    resolve_redis_url,
)


def _pg_gone(port: int) -> bool:
    try:
        psycopg2.connect(host="127.0.0.1", port=port, user="postgres", connect_timeout=1).close()
    except psycopg2.OperationalError:
        return True
    return False


def test_embedded_postgres_persists_across_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    pg = start_postgres(data_dir)
    try:
        assert pg.url.endswith(f"127.0.0.1:{pg.port}/pulse")
        assert pg.admin_url.endswith("/postgres")
        engine = sa.create_engine(pg.url)
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == "pulse"
            conn.execute(sa.text("CREATE TABLE survivor (id int PRIMARY KEY, note text)"))
            conn.execute(sa.text("INSERT INTO survivor VALUES (1, 'still here')"))
        engine.dispose()
    finally:
        pg.stop()
    pg.stop()  # idempotent
    assert not pg.running
    assert pg.process.returncode is not None
    assert _pg_gone(pg.port)

    pg2 = start_postgres(data_dir)
    try:
        engine = sa.create_engine(pg2.url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT note FROM survivor")).scalar() == "still here"
        engine.dispose()
    finally:
        pg2.stop()
    assert _pg_gone(pg2.port)


def test_embedded_redis_persists_across_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "redis"
    with start_redis(data_dir) as rd:
        assert rd.url == f"redis://127.0.0.1:{rd.port}/0"
        client = redis.Redis.from_url(rd.url)
        assert client.set("pulse:test", "kept")
        assert client.get("pulse:test") == b"kept"
        client.close()
    assert not rd.running
    rd.stop()  # idempotent

    rd2 = start_redis(data_dir)
    try:
        client = redis.Redis.from_url(rd2.url)
        assert client.get("pulse:test") == b"kept"
        client.close()
    finally:
        rd2.stop()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(rd2.url, socket_connect_timeout=1).ping()


def test_create_and_drop_database_on_resolved_server() -> None:
    admin_url, stop = resolve_postgres_admin_url()
    name = f"pulse_test_{uuid.uuid4().hex[:12]}"
    try:
        url = create_database(admin_url, name)
        assert url.endswith(f"/{name}")
        with pytest.raises(RuntimeError, match="already exists"):
            create_database(admin_url, name)
        engine = sa.create_engine(url)
        conn = engine.connect()  # left open on purpose: drop must still succeed
        conn.execute(sa.text("CREATE TABLE t (id int)"))
        conn.commit()
        assert create_database(admin_url, name, replace=True) == url
        drop_database(admin_url, name)
        drop_database(admin_url, name)  # absent: no error
        conn.invalidate()
        engine.dispose()
        admin = sa.create_engine(admin_url)
        with admin.connect() as c:
            found = c.execute(
                sa.text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
        admin.dispose()
        assert found == 0
    finally:
        drop_database(admin_url, name)
        if stop is not None:
            stop()


def test_resolvers_fall_back_to_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    closed = free_port()  # nothing listens there

    admin_url, stop_pg = resolve_postgres_admin_url(
        f"postgresql+psycopg2://postgres@127.0.0.1:{closed}/postgres"
    )
    redis_url, stop_redis = resolve_redis_url(f"redis://127.0.0.1:{closed}/0")
    try:
        assert stop_pg is not None and stop_redis is not None
        pg_port = sa.engine.make_url(admin_url).port
        assert pg_port != closed
        admin = sa.create_engine(admin_url)
        with admin.connect() as c:
            assert c.execute(sa.text("SELECT current_database()")).scalar() == "postgres"
        admin.dispose()
        assert redis.Redis.from_url(redis_url).ping()
    finally:
        if stop_pg is not None:
            stop_pg()
        if stop_redis is not None:
            stop_redis()
    assert pg_port is not None and _pg_gone(pg_port)
