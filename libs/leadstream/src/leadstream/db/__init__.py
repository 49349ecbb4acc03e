"""The database layer: engine creation and Alembic migrations (``leadstream migrate``)."""

from leadstream.db.engine import make_engine
from leadstream.db.migrate import current_revisions, head_revisions, upgrade

__all__ = ["current_revisions", "head_revisions", "make_engine", "upgrade"]
