"""SQLAlchemy engines from settings (created on demand, never at import time)."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine

from leadstream.settings import Settings


def make_engine(settings: Settings, *, pool_size: int = 5) -> Engine:
    """An engine over psycopg 3 with pre-ping, so a restarted PostgreSQL is reconnected."""
    return create_engine(
        settings.sqlalchemy_url(), pool_size=pool_size, pool_pre_ping=True, future=True
    )
