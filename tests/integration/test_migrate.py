"""``leadstream migrate`` on a fresh, real PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from leadstream.db import current_revisions, head_revisions, make_engine, upgrade
from leadstream.settings import Settings
from tests.support.databases import drop_database

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh_db(settings: Settings) -> Iterator[Settings]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(settings, pool_size=1).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = make_url(settings.database_url).set(database=name)
    yield settings.model_copy(update={"database_url": url.render_as_string(hide_password=False)})
    drop_database(admin, name)
    admin.dispose()


def test_upgrade_creates_schema_and_is_idempotent(fresh_db: Settings) -> None:
    assert current_revisions(fresh_db) == frozenset()
    upgrade(fresh_db)
    assert current_revisions(fresh_db) == head_revisions()
    upgrade(fresh_db)  # a second run changes nothing and does not fail
    engine = make_engine(fresh_db, pool_size=1)
    try:
        tables = sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
    assert "jobs" in tables


def test_cli_migrate_check_and_unreachable_database(fresh_db: Settings) -> None:
    env = {
        **os.environ,
        "LEADSTREAM_DATABASE_URL": fresh_db.database_url,
        "LEADSTREAM_DATABASE_PASSWORD": fresh_db.database_password.get_secret_value(),
    }
    cli = [sys.executable, "-m", "leadstream.cli"]
    check = subprocess.run([*cli, "migrate", "--check"], env=env, capture_output=True, text=True)
    assert check.returncode == 1
    assert "database at empty" in check.stdout
    done = subprocess.run([*cli, "migrate"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert subprocess.run([*cli, "migrate", "--check"], env=env).returncode == 0
    env["LEADSTREAM_DATABASE_URL"] = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    down = subprocess.run([*cli, "migrate"], env=env, capture_output=True, text=True)
    assert down.returncode == 1
    assert "cannot reach the database" in down.stdout
