"""Alembic builds the whole schema from empty and takes it back to empty."""

from __future__ import annotations

import secrets

from alembic import command
from sqlalchemy import create_engine, inspect

from models import Base
from models.db import normalize_database_url
from tests.factories import alembic_config
from tests.services import create_database, drop_database


def table_names(url: str) -> set[str]:
    engine = create_engine(normalize_database_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrations_upgrade_from_empty_and_downgrade_to_empty(postgres_admin_url):
    name = f"pulse_migrate_{secrets.token_hex(4)}"
    url = create_database(postgres_admin_url, name)
    try:
        config = alembic_config(url)
        command.upgrade(config, "head")
        assert table_names(url) == set(Base.metadata.tables) | {"alembic_version"}

        command.downgrade(config, "base")
        assert table_names(url) == {"alembic_version"}

        command.upgrade(config, "head")
        assert set(Base.metadata.tables) <= table_names(url)
    finally:
        drop_database(postgres_admin_url, name)


def test_the_models_and_the_migrations_agree(database_url):
    """Autogenerate finds nothing to do: every constraint and index is in a migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_engine(normalize_database_url(database_url))
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_ids_the_database_makes_are_time_ordered_version_7(db_session):
    from sqlalchemy import text

    first, second = (db_session.execute(text("SELECT uuid_v7()")).scalar() for _ in range(2))
    now_ms = db_session.execute(
        text("SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)")
    ).scalar()

    assert first.version == second.version == 7
    assert abs((first.int >> 80) - int(now_ms)) < 5_000
    assert first.int >> 80 <= second.int >> 80
