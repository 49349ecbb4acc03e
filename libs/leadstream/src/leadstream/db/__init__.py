"""The database layer: engine creation and Alembic migrations (``leadstream migrate``)."""

from leadstream.db.engine import make_engine
from leadstream.db.migrate import current_revision, head_revision, upgrade

__all__ = ["current_revision", "head_revision", "make_engine", "upgrade"]
