"""The timer's emission attempts: before it emits outbox batches in a Kafka transaction, the
batch service notes, per batch, where ``batches.ready`` ended (partition → offset). After a
crash between that transaction's commit and the database's ``emitted_at``, the next tick reads
the topic from there and marks what it finds as emitted instead of emitting it again.

No foreign key to ``batches``: the note is written on its own connection while the timer's
transaction holds the batch rows ``FOR UPDATE``, and a key check would wait on that lock.

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_emit_attempts",
        sa.Column("batch_id", sa.Text, primary_key=True),
        # {"<partition>": <end offset>, ...} of batches.ready just before the emission
        sa.Column("offsets", postgresql.JSONB, nullable=False),
        sa.Column(
            "attempted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("batch_emit_attempts")
