"""``JobEvent`` records (pure): a job is created, then sealed with its expected total, or failed."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from leadstream_ingest.contacts import now_ms

CREATED = "created"
SEALED = "sealed"
FAILED = "failed"


def job_event(
    job_id: str,
    event_type: str,
    *,
    source: str,
    kind: str,
    request_id: str | None,
    name: str | None = None,
    expected_total: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``JobEvent``; its id is derived from the job and the event type, so a retried request
    that re-emits it carries the same id."""
    return {
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"leadstream:job:{job_id}:{event_type}")),
        "job_id": job_id,
        "source": source,
        "event_time": now_ms(),
        "event_type": event_type,
        "kind": kind,
        "name": name,
        "expected_total": expected_total,
        "request_id": request_id,
        "details": {k: str(v) for k, v in (details or {}).items()},
    }
