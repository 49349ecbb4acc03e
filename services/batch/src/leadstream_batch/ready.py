"""A closed batch → its ``batches.ready`` output (BatchReady value, key, headers)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from leadstream.db.batches import ClosedBatch
from leadstream.runtime import Output

TOPIC = "batches.ready"
COUNT_HEADER = "count"  # leadstream.jobs.headers.COUNT
JOB_COUNTS_HEADER = "job_counts"  # leadstream.jobs.headers.JOB_COUNTS
JOB_ID_HEADER = "job_id"


def _millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def batch_ready_value(batch: ClosedBatch, contacts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The BatchReady record; every field comes from the database, so a re-emission is
    byte-for-byte the same event."""
    return {
        "event_id": batch.event_id,
        "job_id": _single_job(contacts),
        "source": "batch",
        "event_time": _millis(batch.closed_at),
        "batch_id": batch.batch_id,
        "campaign_id": batch.campaign_id,
        "campaign_name": batch.campaign_name,
        "rule_id": batch.rule_id,
        "closed_reason": batch.closed_reason,
        "opened_at": _millis(batch.opened_at),
        "contacts": list(contacts),
    }


def batch_headers(contacts: Sequence[dict[str, Any]]) -> dict[str, str]:
    """``count`` = contacts in the batch; the job tracker's ``job_id`` when they all come from
    one job, else ``job_counts`` per job (and an empty ``job_id``, so the runtime does not copy
    the closing record's job onto a batch of many)."""
    jobs = Counter(c.get("job_id") for c in contacts if c.get("job_id"))
    headers = {COUNT_HEADER: str(len(contacts)), JOB_ID_HEADER: _single_job(contacts) or ""}
    if jobs and headers[JOB_ID_HEADER] == "":
        headers[JOB_COUNTS_HEADER] = json.dumps(dict(sorted(jobs.items())), separators=(",", ":"))
    return headers


def batch_ready_output(batch: ClosedBatch, contacts: Sequence[dict[str, Any]]) -> Output:
    return Output(
        TOPIC,
        batch_ready_value(batch, contacts),
        key=batch.batch_id,
        headers=batch_headers(contacts),
    )


def _single_job(contacts: Sequence[dict[str, Any]]) -> str | None:
    jobs = {c.get("job_id") for c in contacts}
    if len(jobs) == 1:
        only = next(iter(jobs))
        return str(only) if only else None
    return None
