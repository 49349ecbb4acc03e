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


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (idempotent)."""
    command.upgrade(_config(settings), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config(Settings())).get_current_head()


def current_revision(settings: Settings) -> str | None:
    engine = make_engine(settings, pool_size=1)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
