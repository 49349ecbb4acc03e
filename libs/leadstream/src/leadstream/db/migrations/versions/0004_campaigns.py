"""Campaigns, routing rules, batches, and the Email Bison side: lead ids, uploads, dry-run
requests, contact events (webhooks and polls), replies, and the scheduler's bookkeeping.

Revision ID: 0004
Revises: 0002_contacts
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0002_contacts"
branch_labels = None
depends_on = None

_NOW = sa.func.now()
_JSONB = postgresql.JSONB


def _ts(name: str, *, nullable: bool = True, now: bool = False) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=_NOW if now else None,
    )


def upgrade() -> None:
    # ---------------------------------------------------------------- campaigns and routing
    op.create_table(
        "campaigns",
        sa.Column("campaign_id", sa.Text, primary_key=True),  # Email Bison id, as text
        sa.Column("name", sa.Text),
        sa.Column("status", sa.Text),
        sa.Column("type", sa.Text),
        # LeadStream's own cap on new leads per day (null: the batch service's default)
        sa.Column("daily_lead_cap", sa.Integer),
        sa.Column("remote", _JSONB),  # the campaign object as Email Bison last returned it
        _ts("synced_at"),
        _ts("created_at", nullable=False, now=True),
        _ts("updated_at", nullable=False, now=True),
        sa.CheckConstraint("daily_lead_cap IS NULL OR daily_lead_cap >= 0", name="campaigns_cap"),
    )
    op.create_table(
        "campaign_stats",
        sa.Column("campaign_id", sa.Text, nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date, nullable=False),
        sa.Column("stats", _JSONB, nullable=False),
        _ts("fetched_at", nullable=False, now=True),
        sa.PrimaryKeyConstraint("campaign_id", "start_date", "end_date"),
    )
    op.create_table(
        "campaign_rules",
        sa.Column("rule_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("campaign_id", sa.Text, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False, server_default=sa.text("100")),
        sa.Column("match", _JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("is_default", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        _ts("created_at", nullable=False, now=True),
    )
    op.create_index(
        "campaign_rules_one_default",
        "campaign_rules",
        ["is_default"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )

    # ---------------------------------------------------------------- batches
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False),  # of its BatchReady
        sa.Column("campaign_id", sa.Text, nullable=False),
        sa.Column("rule_id", sa.Text),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        sa.Column("size", sa.Integer, nullable=False, server_default=sa.text("0")),
        _ts("opened_at", nullable=False),
        _ts("closed_at"),
        sa.Column("closed_reason", sa.Text),
        # the input record (topic:partition:offset) whose handling closed it: when that record
        # is handled again (its transaction was aborted), the batch is emitted again
        sa.Column("closed_by", sa.Text),
        # handler: emitted in the input's Kafka transaction; outbox: by the timer, then marked
        sa.Column("emit_via", sa.Text),
        _ts("emitted_at"),
        sa.CheckConstraint("status IN ('open', 'closed')", name="batches_status_known"),
        sa.CheckConstraint(
            "emit_via IS NULL OR emit_via IN ('handler', 'outbox')", name="batches_emit_known"
        ),
    )
    op.create_index(
        "batches_one_open_per_campaign",
        "batches",
        ["campaign_id"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index(
        "batches_outbox",
        "batches",
        ["closed_at"],
        postgresql_where=sa.text("emit_via = 'outbox' AND emitted_at IS NULL"),
    )
    op.create_index("batches_closed_by", "batches", ["closed_by"])
    op.create_table(
        "batch_members",
        sa.Column("contact_id", sa.Text, primary_key=True),  # a contact is batched once, ever
        sa.Column("batch_id", sa.Text, sa.ForeignKey("batches.batch_id"), nullable=False),
        sa.Column("campaign_id", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("verified_event_id", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text),
        sa.Column("contact", _JSONB, nullable=False),  # the BatchContact record
        _ts("added_at", nullable=False, now=True),
    )
    op.create_index("batch_members_batch", "batch_members", ["batch_id", "position"], unique=True)
    op.create_table(
        "batch_holds",
        sa.Column("contact_id", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),  # no_route | daily_cap
        sa.Column("detail", sa.Text),
        sa.Column("campaign_id", sa.Text),
        sa.Column("rule_id", sa.Text),
        sa.Column("hold_until", sa.Date),  # daily_cap: the day it may be batched
        sa.Column("verified_event_id", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text),
        sa.Column("contact", _JSONB, nullable=False),  # BatchContact + routing attributes
        _ts("held_at", nullable=False, now=True),
        _ts("updated_at", nullable=False, now=True),
        _ts("reroute_requested_at"),
        sa.Column("reroute_campaign_id", sa.Text),
        _ts("released_at"),
        sa.Column("released_batch_id", sa.Text),
        sa.CheckConstraint("reason IN ('no_route', 'daily_cap')", name="batch_holds_reason"),
    )
    op.create_index(
        "batch_holds_active",
        "batch_holds",
        ["reason", "hold_until"],
        postgresql_where=sa.text("released_at IS NULL"),
    )
    op.create_table(
        "campaign_daily_counts",
        sa.Column("campaign_id", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("leads", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("campaign_id", "day"),
    )

    # ---------------------------------------------------------------- Email Bison sync
    op.create_table(
        "bison_leads",
        sa.Column("contact_id", sa.Text, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("lead_id", sa.Text),
        sa.Column("campaign_id", sa.Text),
        sa.Column("status", sa.Text, nullable=False, server_default="uploaded"),
        sa.Column("status_rank", sa.Integer, nullable=False, server_default=sa.text("0")),
        _ts("status_at"),
        sa.Column("last_event_type", sa.Text),
        _ts("last_event_at"),
        sa.Column("sentiment", sa.Text),
        _ts("replied_at"),
        _ts("bounced_at"),
        _ts("unsubscribed_at"),
        _ts("created_at", nullable=False, now=True),
        _ts("updated_at", nullable=False, now=True),
    )
    op.create_index("bison_leads_lead_id", "bison_leads", ["lead_id"])
    op.create_index("bison_leads_email", "bison_leads", ["email"])
    op.create_table(
        "bison_uploads",
        sa.Column("batch_id", sa.Text, primary_key=True),
        sa.Column("campaign_id", sa.Text, nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="in_progress"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        # the BatchReady record that did the upload: its replay re-emits, a duplicate does not
        sa.Column("source_topic", sa.Text, nullable=False),
        sa.Column("source_partition", sa.Integer, nullable=False),
        sa.Column("source_offset", sa.BigInteger, nullable=False),
        sa.Column("result", _JSONB),  # the BatchSynced record, once done
        _ts("started_at", nullable=False, now=True),
        _ts("finished_at"),
        sa.CheckConstraint("status IN ('in_progress', 'done')", name="bison_uploads_status"),
    )
    op.create_table(
        "bison_upload_items",
        sa.Column("batch_id", sa.Text, nullable=False),
        sa.Column("contact_id", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("lead_id", sa.Text),
        # null (not sent yet) | created | updated | failed | dry_run
        sa.Column("upsert_status", sa.Text),
        # null | pending (call sent, outcome unknown) | attached | skipped | failed | dry_run
        sa.Column("attach_status", sa.Text),
        sa.Column("error", sa.Text),
        _ts("updated_at", nullable=False, now=True),
        sa.PrimaryKeyConstraint("batch_id", "contact_id"),
    )
    op.create_table(
        "bison_dry_run_requests",
        sa.Column("batch_id", sa.Text, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("body", _JSONB, nullable=False),
        _ts("recorded_at", nullable=False, now=True),
        sa.PrimaryKeyConstraint("batch_id", "seq"),
    )
    op.create_table(
        "contact_events",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("workspace_id", sa.Text),
        sa.Column("contact_id", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("lead_id", sa.Text),
        sa.Column("campaign_id", sa.Text),
        sa.Column("reply_id", sa.Text),
        sa.Column("sentiment", sa.Text),
        _ts("occurred_at", nullable=False),
        _ts("recorded_at", nullable=False, now=True),
        sa.Column("payload", sa.Text),
    )
    # the same reply from a webhook and from the replies poll is one event
    op.create_index(
        "contact_events_reply",
        "contact_events",
        ["event_type", "reply_id"],
        unique=True,
        postgresql_where=sa.text("reply_id IS NOT NULL"),
    )
    op.create_index("contact_events_contact", "contact_events", ["contact_id", "occurred_at"])
    op.create_index("contact_events_email", "contact_events", ["email"])
    op.create_table(
        "bison_replies",
        sa.Column("reply_id", sa.Text, primary_key=True),
        sa.Column("lead_id", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("contact_id", sa.Text),
        sa.Column("campaign_id", sa.Text),
        sa.Column("text_body", sa.Text),
        sa.Column("interested", sa.Boolean),
        sa.Column("automated_reply", sa.Boolean),
        sa.Column("sentiment", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        _ts("received_at"),
        _ts("recorded_at", nullable=False, now=True),
    )
    op.create_table(
        "bison_sync_runs",
        sa.Column("job", sa.Text, primary_key=True),
        _ts("last_started_at"),
        _ts("last_finished_at"),
        sa.Column("last_status", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("runs", sa.Integer, nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    for table in (
        "bison_sync_runs",
        "bison_replies",
        "contact_events",
        "bison_dry_run_requests",
        "bison_upload_items",
        "bison_uploads",
        "bison_leads",
        "campaign_daily_counts",
        "batch_holds",
        "batch_members",
        "batches",
        "campaign_rules",
        "campaign_stats",
        "campaigns",
    ):
        op.drop_table(table)
