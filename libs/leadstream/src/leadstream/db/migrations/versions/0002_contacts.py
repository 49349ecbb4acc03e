"""Contacts (one row per normalized email, with the event that created it and the latest
verification) and suppressions (emails and domains nobody may be sent to).

Revision ID: 0002_contacts
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_contacts"
down_revision = "0001"
branch_labels = ("contacts",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("contact_id", postgresql.UUID(as_uuid=False), primary_key=True),
        # lower-cased local part @ IDNA domain: the de-duplication key
        sa.Column("email_normalized", sa.Text, nullable=False, unique=True),
        sa.Column("domain", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("first_name", sa.Text),
        sa.Column("last_name", sa.Text),
        sa.Column("phone_e164", sa.Text),
        sa.Column("company", sa.Text),
        sa.Column("website_domain", sa.Text),
        sa.Column("role_account", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("free_provider", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text),
        # event_id of the ContactSubmitted that created the row: its replay is not a duplicate
        sa.Column("created_event_id", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        # the latest verification (verify stage), null until verified
        sa.Column("verdict", sa.Text),
        sa.Column(
            "verdict_reasons",
            postgresql.ARRAY(sa.Text),
            nullable=False,
            server_default=sa.text("'{}'::text[]"),
        ),
        sa.Column("mx_host", sa.Text),
        sa.Column("suggestion", sa.Text),
        sa.Column("verifier", sa.Text),
        sa.Column("disposable_list_version", sa.Text),
        sa.Column("verified_event_id", sa.Text),
        sa.Column("verified_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "verdict IS NULL OR verdict IN ('deliverable', 'risky', 'undeliverable', 'unknown')",
            name="contacts_verdict_known",
        ),
    )
    op.create_index("contacts_domain_idx", "contacts", ["domain"])
    op.create_index("contacts_job_id_idx", "contacts", ["job_id"])

    # Every change takes the next version (writers serialize on an advisory lock, so versions
    # commit in order): a reader polls `version > last seen` and misses nothing. Removal is a
    # soft delete so pollers learn about it.
    op.execute("CREATE SEQUENCE suppressions_version_seq")
    op.create_table(
        "suppressions",
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column(
            "version",
            sa.BigInteger,
            nullable=False,
            server_default=sa.text("nextval('suppressions_version_seq')"),
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("removed_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("kind", "value", name="suppressions_pkey"),
        sa.CheckConstraint("kind IN ('email', 'domain')", name="suppressions_kind_known"),
    )
    op.create_index("suppressions_version_idx", "suppressions", ["version"], unique=True)


def downgrade() -> None:
    op.drop_table("suppressions")
    op.execute("DROP SEQUENCE suppressions_version_seq")
    op.drop_table("contacts")
