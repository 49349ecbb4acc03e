"""Scratch databases for tests: created, migrated, and dropped afterwards."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from leadstream.db import make_engine
from leadstream.db.migrate import upgrade
from leadstream.settings import Settings

S = TypeVar("S", bound=Settings)


@contextlib.contextmanager
def scratch_database(settings: S, revision: str | None = "heads") -> Iterator[S]:
    """``settings`` pointing at a new database migrated to ``revision`` (None: left empty);
    dropped after."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(settings, pool_size=1).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = make_url(settings.database_url).set(database=name)
    fresh = settings.model_copy(update={"database_url": url.render_as_string(hide_password=False)})
    try:
        if revision is not None:
            upgrade(fresh, revision)
        yield fresh
    finally:
        drop_database(admin, name)
        admin.dispose()


def drop_database(admin: Engine, name: str, *, attempts: int = 40) -> None:
    """``DROP DATABASE … WITH (FORCE)``, retried while PostgreSQL refuses to end a session it
    does not let us signal: an autovacuum worker that started on the scratch database (it runs
    as the bootstrap superuser; it is gone within a moment)."""
    for attempt in range(attempts):
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except ProgrammingError as exc:
            if "must be a member of the role" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.25)
