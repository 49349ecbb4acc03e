"""Alembic environment: the engine comes from LeadStream's settings."""

from __future__ import annotations

from alembic import context

from leadstream.db.engine import make_engine
from leadstream.settings import Settings

settings = context.config.attributes.get("settings") or Settings()
engine = make_engine(settings, pool_size=1)
try:
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
finally:
    engine.dispose()
