"""The ``batches.synced`` output of an upload: per-contact results, count headers."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from leadstream.db.bison_leads import UploadItem
from leadstream.events import derived_event_id
from leadstream.runtime import Output

TOPIC = "batches.synced"
SUCCESS = frozenset({"attached", "dry_run"})


def result_of(item: UploadItem, job_id: str | None, *, dry_run: bool) -> dict[str, Any]:
    """What happened to one contact: attached, skipped (refused by Email Bison: another
    sequence, bounced …), failed (a 422 on the lead, or no lead id came back) or dry_run."""
    if dry_run:
        status, error = "dry_run", None
    elif item.attach_status == "attached":
        status, error = "attached", None
    elif item.attach_status == "skipped":
        status, error = "skipped", item.error
    else:
        status, error = "failed", item.error or "not uploaded"
    return {
        "contact_id": item.contact_id,
        "email": item.email,
        "lead_id": item.lead_id,
        "status": status,
        "error": error,
        "job_id": job_id,
    }


def synced_value(
    ready: Mapping[str, Any], items: Sequence[UploadItem], *, dry_run: bool, attempt: int
) -> dict[str, Any]:
    jobs = {c["contact_id"]: c.get("job_id") for c in ready["contacts"]}
    return {
        "event_id": derived_event_id("bison-sync", str(ready["event_id"])),
        "job_id": ready.get("job_id"),
        "source": "bison-sync",
        "event_time": int(time.time() * 1000),
        "batch_id": ready["batch_id"],
        "campaign_id": ready["campaign_id"],
        "dry_run": dry_run,
        "attempt": attempt,
        "results": [result_of(i, jobs.get(i.contact_id), dry_run=dry_run) for i in items],
    }


def synced_output(value: Mapping[str, Any]) -> Output:
    """``count`` = contacts synced successfully; ``job_id`` when they all come from one job,
    else ``job_counts`` (and an empty ``job_id``)."""
    ok = [r for r in value["results"] if r["status"] in SUCCESS]
    jobs = Counter(r.get("job_id") for r in ok if r.get("job_id"))
    all_jobs = {r.get("job_id") for r in value["results"]}
    single = next(iter(all_jobs)) if len(all_jobs) == 1 else None
    headers = {"count": str(len(ok)), "job_id": str(single or "")}
    if jobs and not single:
        headers["job_counts"] = json.dumps(dict(sorted(jobs.items())), separators=(",", ":"))
    return Output(TOPIC, dict(value), key=str(value["batch_id"]), headers=headers)
