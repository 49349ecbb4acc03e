"""The tables written once and updated once keep room for the second version (migration
0007): the verify stage's verdict update and bison-sync's status update are heap-only."""

from __future__ import annotations

import sqlalchemy as sa

from leadstream.db import make_engine
from leadstream.settings import Settings
from tests.support.databases import scratch_database

ROWS = 3000

CONTACTS = """
INSERT INTO contacts (contact_id, email_normalized, domain, email, first_name, last_name,
                      phone_e164, company, website_domain, source, job_id, created_event_id)
SELECT CAST(md5(n::text) AS uuid), 'person.' || n || '@example-company-' || (n % 97) || '.com',
       'example-company-' || (n % 97) || '.com', 'Person.' || n || '@Example-Company.com',
       'Firstname', 'Lastname-' || n, '+4474' || lpad(n::text, 8, '0'), 'Company ' || (n % 97),
       'example-company-' || (n % 97) || '.com', 'csv', 'job-1', md5('e' || n::text)
FROM generate_series(1, :rows) AS n
"""
VERDICTS = """
UPDATE contacts SET verdict = 'deliverable', verdict_reasons = ARRAY['mx_found', 'free_provider'],
       mx_host = 'mx1.example-company.com', suggestion = NULL, verifier = 'dns',
       disposable_list_version = '2025.10.1', verified_event_id = md5(contact_id::text),
       verified_at = now()
"""
ITEMS = """
INSERT INTO bison_upload_items (batch_id, contact_id, email, position)
SELECT 'batch-' || (n / 500), 'c' || md5(n::text), 'person.' || n || '@example.com', n % 500
FROM generate_series(1, :rows) AS n
"""
STATUSES = """
UPDATE bison_upload_items SET lead_id = (100000 + position)::text, upsert_status = 'created',
       attach_status = 'attached', updated_at = now()
"""


def _updates(conn: sa.Connection, table: str) -> tuple[int, int]:
    row = conn.execute(
        sa.text(
            "SELECT pg_stat_get_xact_tuples_updated(CAST(:t AS regclass)), "
            "pg_stat_get_xact_tuples_hot_updated(CAST(:t AS regclass))"
        ),
        {"t": table},
    ).one()
    return int(row[0]), int(row[1])


def test_verdict_and_upload_status_updates_are_heap_only(settings: Settings) -> None:
    with scratch_database(settings) as db:
        engine = make_engine(db, pool_size=1)
        try:
            with engine.connect() as conn, conn.begin():
                for table in ("contacts", "bison_upload_items"):
                    options = conn.execute(
                        sa.text("SELECT reloptions FROM pg_class WHERE relname = :t"), {"t": table}
                    ).scalar_one()
                    assert options == ["fillfactor=40"], (table, options)
                conn.execute(sa.text(CONTACTS), {"rows": ROWS})
                conn.execute(sa.text(ITEMS), {"rows": ROWS})
                conn.execute(sa.text(VERDICTS))
                conn.execute(sa.text(STATUSES))
                # every row updated once, and not one of them had to touch an index
                assert _updates(conn, "contacts") == (ROWS, ROWS)
                assert _updates(conn, "bison_upload_items") == (ROWS, ROWS)
        finally:
            engine.dispose()
