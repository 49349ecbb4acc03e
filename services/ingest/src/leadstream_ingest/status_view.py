"""What the status page shows (``GET /v1/status``): the stages from Kafka (shared sample,
:mod:`leadstream_ingest.pipeline_status`) and the jobs a caller may see, with progress, phase,
elapsed time and ETA.

Counts only: an anonymous caller (``LEADSTREAM_STATUS_PUBLIC``) gets no job names and no
error texts, which may carry a file name or a line of a customer's data.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel

from leadstream.db.ingest import IngestStore
from leadstream.jobs.state import REJECTED, TERMINAL_DLQS, VERIFIED
from leadstream_ingest.job_states import JobStates
from leadstream_ingest.job_view import JobOut, job_view
from leadstream_ingest.pipeline_status import PipelineSampler

REFRESH_S = 1.5  # what the page is told to poll at
RECENT_JOBS = 10  # finished jobs shown besides the running ones
RUNNING_JOBS = 50
STALLED_AFTER_S = 600.0  # a running job without progress this long is shown as stalled
ACTIVE = frozenset({"receiving", "processing"})


class StageOut(BaseModel):
    stage: str
    group: str
    state: str
    instances: int
    lag: int
    rate_in: float | None
    rate_out: float | None
    dead_letters: int
    dead_letter_rate: float | None
    outputs: list[str]


class KafkaOut(BaseModel):
    ok: bool
    error: str | None
    as_of: datetime | None
    age_s: float | None


class JobSummary(BaseModel):
    job_id: str
    kind: str
    name: str | None
    status: str
    phase: str
    active: bool
    stalled: bool
    expected_total: int | None
    received: int
    processed: int
    progress: float | None
    rate_per_s: float
    eta_s: float | None
    elapsed_s: float
    created_at: datetime
    updated_at: datetime | None
    completed_at: datetime | None
    error: str | None


class StatusOut(BaseModel):
    generated_at: datetime
    refresh_s: float
    anonymous: bool
    kafka: KafkaOut
    stages: list[StageOut]
    running: int
    jobs: list[JobSummary]


def processed_of(counts: Mapping[str, int]) -> int:
    """Contacts at a terminal outcome (rejected, verified, dead-lettered by filter/verify):
    what the job tracker counts toward completion."""
    return (
        counts.get(REJECTED, 0)
        + counts.get(VERIFIED, 0)
        + sum(counts.get(q, 0) for q in TERMINAL_DLQS)
    )


def phase_of(job: JobOut) -> str:
    """Where a job is: receiving, queued (no contact counted yet), filtering, verifying, or
    its final status. The earliest stage that has not seen every contact names the phase."""
    if job.status not in ACTIVE:
        return job.status
    if job.status == "receiving":
        return "receiving"
    counts = job.counts
    if not counts:
        return "queued"
    filtered = (
        counts.get("contacts.filtered", 0)
        + counts.get("filter.rejected", 0)
        + counts.get("dlq.filter", 0)
    )
    return "filtering" if filtered < (job.expected_total or 0) else "verifying"


def summarize_job(job: JobOut, now: datetime, *, redact: bool) -> JobSummary:
    processed = processed_of(job.counts)
    total = job.expected_total
    progress = None if total is None else (1.0 if total <= 0 else min(1.0, processed / total))
    active = job.status in ACTIVE
    last_move = job.updated_at or job.created_at
    end = job.completed_at or now
    return JobSummary(
        job_id=job.job_id,
        kind=job.kind,
        name=None if redact else job.name,
        status=job.status,
        phase=phase_of(job),
        active=active,
        stalled=active and (now - last_move).total_seconds() > STALLED_AFTER_S,
        expected_total=total,
        received=job.received,
        processed=processed,
        progress=progress,
        rate_per_s=job.rate_per_s,
        eta_s=job.eta_s if active else None,
        elapsed_s=max(0.0, (end - job.created_at).total_seconds()),
        created_at=job.created_at,
        updated_at=job.updated_at,
        completed_at=job.completed_at,
        error=None if redact else job.error,
    )


def select_jobs(store: IngestStore, states: JobStates, owner: str | None) -> list[JobOut]:
    """The running jobs (per the tracker) and the newest ones, of ``owner`` (None: every
    job); running first, newest first. Blocking (PostgreSQL)."""
    recent = store.list_jobs(owner, limit=RECENT_JOBS)
    seen = {r.job_id for r in recent}
    extra = store.get_jobs([i for i in states.running(RUNNING_JOBS) if i not in seen])
    rows = recent + [r for r in extra if owner is None or r.api_key_id == owner]
    jobs = [job_view(r, states.get(r.job_id)) for r in rows]
    jobs.sort(key=lambda j: j.created_at, reverse=True)
    jobs.sort(key=lambda j: j.status not in ACTIVE)  # stable: running first
    return jobs


@dataclass
class StatusBoard:
    """Builds :class:`StatusOut`; the jobs of each owner are read at most once per
    ``max_age_s`` (many browsers polling cost one query per second, not one per browser)."""

    store: IngestStore
    states: JobStates
    sampler: PipelineSampler
    max_age_s: float = 1.0
    _jobs: dict[str | None, tuple[float, list[JobOut]]] = field(default_factory=dict)

    async def _jobs_of(self, owner: str | None) -> list[JobOut]:
        now = time.monotonic()
        cached = self._jobs.get(owner)
        if cached is not None and now - cached[0] < self.max_age_s:
            return cached[1]
        jobs = await asyncio.to_thread(select_jobs, self.store, self.states, owner)
        stale = [k for k, (at, _) in self._jobs.items() if now - at > 60]
        for key in stale:
            del self._jobs[key]
        self._jobs[owner] = (time.monotonic(), jobs)
        return jobs

    async def view(self, owner: str | None, *, anonymous: bool) -> StatusOut:
        """``owner`` None: every job (an admin key, or an anonymous caller)."""
        sample, jobs = await asyncio.gather(self.sampler.current(), self._jobs_of(owner))
        now = datetime.now(UTC)
        summaries = [summarize_job(j, now, redact=anonymous) for j in jobs]
        as_of = None if sample.taken_at is None else datetime.fromtimestamp(sample.taken_at, UTC)
        return StatusOut(
            generated_at=now,
            refresh_s=REFRESH_S,
            anonymous=anonymous,
            kafka=KafkaOut(
                ok=sample.error is None and sample.taken_at is not None,
                error=sample.error,
                as_of=as_of,
                age_s=None if as_of is None else max(0.0, (now - as_of).total_seconds()),
            ),
            stages=[
                StageOut(
                    stage=s.stage,
                    group=s.group,
                    state=s.state,
                    instances=s.instances,
                    lag=s.lag,
                    rate_in=s.rate_in,
                    rate_out=s.rate_out,
                    dead_letters=s.dead_letters,
                    dead_letter_rate=s.dead_letter_rate,
                    outputs=list(s.outputs),
                )
                for s in sample.stages
            ],
            running=sum(1 for s in summaries if s.active and not s.stalled),
            jobs=summaries,
        )
