"""Landing-page registrations: one row per phone (``registrations``), one row per accepted
request (``registration_requests``: registered, or a duplicate of an earlier phone).

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0001"
branch_labels = ("registrations",)
depends_on = None

_NOW = sa.func.now()


def upgrade() -> None:
    op.create_table(
        "registrations",
        # E.164: the uniqueness key (one registration per phone, ever)
        sa.Column("phone_e164", sa.Text, primary_key=True),
        # the request (and its event) that created the row: its replay is not a duplicate
        sa.Column("request_id", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("phone", sa.Text, nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("first_name", sa.Text),
        sa.Column("last_name", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("landing_page", sa.Text),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("custom_fields", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("source_details", postgresql.JSONB),
        sa.Column("consent", postgresql.JSONB),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    )
    op.create_table(
        "registration_requests",
        sa.Column("request_id", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column(
            "phone_e164",
            sa.Text,
            sa.ForeignKey("registrations.phone_e164", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint(
            "status IN ('registered', 'duplicate')", name="registration_requests_status_known"
        ),
    )
    op.create_index("registration_requests_phone_idx", "registration_requests", ["phone_e164"])


def downgrade() -> None:
    op.drop_table("registration_requests")
    op.drop_table("registrations")
