"""Alembic, driven from code: the migrations ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from leadstream.db.engine import make_engine
from leadstream.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["settings"] = settings
    return cfg


def upgrade(settings: Settings, revision: str = "heads") -> None:
    """Apply migrations up to ``revision`` (idempotent). Features add their tables on branches
    from the base revision, so the default target is every head."""
    command.upgrade(_config(settings), revision)


def head_revisions() -> frozenset[str]:
    """Every head revision of the code's migration scripts."""
    return frozenset(ScriptDirectory.from_config(_config(Settings())).get_heads())


def current_revisions(settings: Settings) -> frozenset[str]:
    """The revisions the database is at (empty before the first migration)."""
    engine = make_engine(settings, pool_size=1)
    try:
        with engine.connect() as conn:
            return frozenset(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
