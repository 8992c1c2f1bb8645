"""The engine and the session discipline: one engine per process, one session per unit of work.

The API gets a request-scoped session (api.extensions closes it at teardown);
jobs use `with db.session_scope():`, which commits once or rolls back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalize_database_url(url: str) -> str:
    """Accept postgres:// and postgresql:// and always use the psycopg2 driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


class Database:
    def __init__(self) -> None:
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    def configure(self, url: str, *, pool_size: int = 5, max_overflow: int = 10) -> Engine:
        if self._engine is not None:
            self._engine.dispose()
        self._engine = create_engine(
            normalize_database_url(url),
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=True,
            connect_args={"connect_timeout": 5, "application_name": "pulse"},
        )
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        return self._engine

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("the database is not configured: call db.configure(url) first")
        return self._engine

    def session(self) -> Session:
        if self._sessions is None:
            raise RuntimeError("the database is not configured: call db.configure(url) first")
        return self._sessions()

    @contextmanager
    def session_scope(self) -> Iterator[Session]:
        """A session that commits once at the end of the block, or rolls back on error."""
        session = self.session()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        self._engine = None
        self._sessions = None


db = Database()
