"""Room on each page for the rows' second version: ``contacts`` (the verify stage sets the
verdict columns of every contact the filter inserted) and ``bison_upload_items`` (bison-sync
sets each item's lead id and statuses after the upload) are written once and updated once,
batch by batch, and none of the updated columns is indexed. With pages filled to 100%
(PostgreSQL's default) the new version lands on another page, so the update also inserts into
every index (four on ``contacts``): 2% of the contacts' updates were heap-only (HOT) in a
100k-contact run. The new version is larger than the first (the verdict, its reasons, the MX
host…), and a batch updates every row of a page in one go, so the page needs room for more
than a copy of each row: updating 5,000 contacts in one statement, 0% of the updates were HOT
at fill factor 100, 32% at 70, 73% at 50 and 100% at 40 (upload items: 0%, 85% at 50, 100% at
40). The table ends up about as large either way (every row has two versions until vacuum;
498 pages at 40 against 454 at 100 in that test); what goes is the index work and the index
bloat of every update.

Applies to pages written from now on; ``VACUUM FULL`` (or ``pg_repack``) would rewrite the
existing ones.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

FILLFACTOR = 40
TABLES = ("contacts", "bison_upload_items")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
