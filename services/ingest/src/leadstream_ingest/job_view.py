"""What the job endpoints show: the job row (Postgres) merged with the tracker's state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from leadstream.db.ingest import JobRow
from leadstream_ingest.job_states import JobStateLike


class JobOut(BaseModel):
    job_id: str
    kind: str
    name: str | None
    source: str
    status: str
    created_at: datetime
    sealed_at: datetime | None
    expected_total: int | None
    received: int
    counts: dict[str, int]
    rejected_by_reason: dict[str, int]
    verdicts: dict[str, int]
    batched: int
    synced: int
    rate_per_s: float
    eta_s: float | None
    updated_at: datetime | None
    completed_at: datetime | None
    error: str | None
    details: dict[str, Any]


class JobList(BaseModel):
    jobs: list[JobOut]
    next_before: datetime | None


def _time(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def job_view(row: JobRow, state: JobStateLike | None) -> JobOut:
    failed = row.meta.get("status") == "failed"
    details = {k: v for k, v in row.meta.items() if k not in ("name", "status", "error")}
    if state is None:
        status = "failed" if failed else ("processing" if row.sealed_at else "receiving")
        return JobOut(
            job_id=row.job_id,
            kind=row.kind,
            name=row.name,
            source=row.source,
            status=status,
            created_at=row.created_at,
            sealed_at=row.sealed_at,
            expected_total=row.expected_total,
            received=0,
            counts={},
            rejected_by_reason={},
            verdicts={},
            batched=0,
            synced=0,
            rate_per_s=0.0,
            eta_s=None,
            updated_at=None,
            completed_at=None,
            error=row.meta.get("error") if failed else None,
            details=details,
        )
    counts = dict(state.counts)
    return JobOut(
        job_id=row.job_id,
        kind=row.kind,
        name=row.name,
        source=row.source,
        status="failed" if failed else state.status,
        created_at=row.created_at,
        sealed_at=row.sealed_at,
        expected_total=state.expected_total
        if state.expected_total is not None
        else row.expected_total,
        received=counts.get("contacts.raw", 0),
        counts=counts,
        rejected_by_reason=dict(state.rejected_by_reason),
        verdicts=dict(state.verdicts),
        batched=state.batched,
        synced=state.synced,
        rate_per_s=state.rate_per_s,
        eta_s=state.eta_s,
        updated_at=_time(state.updated_at),
        completed_at=_time(state.completed_at),
        error=state.error or (row.meta.get("error") if failed else None),
        details=details,
    )
