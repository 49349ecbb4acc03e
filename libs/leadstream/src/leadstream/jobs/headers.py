"""Kafka header names the stages set so the job tracker counts without decoding values.

Every header value is UTF-8 text. The table of which topic carries which header is in
``docs/events.md`` ("Headers the job tracker reads"); stages import these names.
"""

from __future__ import annotations

JOB_ID = "job_id"
"""The ingest job of the record (same name as ``leadstream.runtime.JOB_ID_HEADER``, which the
stage runtime copies from every input to its outputs). Records without it are not counted."""

REASON = "reason"
"""On ``contacts.rejected``: the reason code (``duplicate``, ``invalid_email``, …)."""

STAGE = "stage"
"""On ``contacts.rejected``: the stage that rejected the contact (``filter`` or ``verify``)."""

VERDICT = "verdict"
"""On ``contacts.verified``: ``deliverable``, ``risky``, ``undeliverable`` or ``unknown``."""

COUNT = "count"
"""On ``batches.ready`` (contacts in the batch) and ``batches.synced`` (contacts uploaded
successfully): a non-negative decimal integer, for the job named by ``job_id``."""

JOB_COUNTS = "job_counts"
"""On ``batches.ready``/``batches.synced`` whose contacts come from several jobs: a JSON object
``{"<job id>": <contacts>, …}``. When present it replaces ``job_id`` + ``count``."""

REPLAY_ID = "replay.id"
"""On a record a replay re-published, and on every output the runtime derived from one (same
name as ``leadstream.runtime.records.REPLAY_ID_HEADER``). Contact outcomes (``contacts.*``,
``dlq.*``) marked with it are not counted: the first pass counted them. ``batches.*`` are
counted all the same: a contact joins one batch ever, so a batch a replay closes is new."""

DLQ_STAGE = "dlq.stage"
"""On ``dlq.*``: the stage that dead-lettered the record (set by the stage runtime)."""

__all__ = [
    "COUNT",
    "DLQ_STAGE",
    "JOB_COUNTS",
    "JOB_ID",
    "REASON",
    "REPLAY_ID",
    "STAGE",
    "VERDICT",
]
