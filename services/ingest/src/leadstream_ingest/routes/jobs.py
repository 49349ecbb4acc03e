"""``GET /v1/jobs``, ``GET /v1/jobs/{job_id}`` and the progress stream
``GET /v1/jobs/{job_id}/events`` (Server-Sent Events). A job is visible only to the API key
that created it, and to admin keys; any other key gets 404, as if it did not exist."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from leadstream.db.ingest import JobRow
from leadstream_ingest.auth import IngestKey, Principal
from leadstream_ingest.deps import ServicesDep
from leadstream_ingest.errors import NotFound
from leadstream_ingest.job_view import JobList, JobOut, job_view
from leadstream_ingest.services import Services

router = APIRouter(prefix="/v1", tags=["jobs"])
JobId = Annotated[str, Path(min_length=1, max_length=100)]
TERMINAL = frozenset({"completed", "failed"})
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, invalid or revoked API key"},
    403: {"description": "The key lacks the ingest scope"},
    404: {"description": "No such job for this key"},
}


_JOB_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


async def _owned_job(services: Services, principal: Principal, job_id: str) -> JobRow:
    """The job, if this key may see it. The answer for another key's job is the answer for
    no job at all (ids cannot be probed); an id that no job can have (job ids are UUIDs) is
    not even looked up."""
    row = None
    if _JOB_ID.fullmatch(job_id):
        row = await run_in_threadpool(services.store.get_job, job_id)
    if row is None or not principal.may_see(row.api_key_id):
        raise NotFound("no such job for this API key", code="job_not_found")
    return row


@router.get("/jobs", response_model=JobList, responses=ERRORS, summary="List your jobs")
async def list_jobs(
    principal: IngestKey,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[datetime | None, Query(description="Page: jobs created before.")] = None,
) -> JobList:
    """Newest first; admin keys see every job."""
    owner = None if principal.is_admin else principal.key_id
    rows = await run_in_threadpool(services.store.list_jobs, owner, limit=limit, before=before)
    jobs = [job_view(r, services.jobs.get(r.job_id)) for r in rows]
    next_before = rows[-1].created_at if len(rows) == limit else None
    return JobList(jobs=jobs, next_before=next_before)


@router.get("/jobs/{job_id}", response_model=JobOut, responses=ERRORS, summary="One job")
async def get_job(job_id: JobId, principal: IngestKey, services: ServicesDep) -> JobOut:
    """Counts per stage, rejects by reason, verdicts, batched, synced, rate and ETA."""
    row = await _owned_job(services, principal, job_id)
    return job_view(row, services.jobs.get(job_id))


@router.get(
    "/jobs/{job_id}/events",
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}},
    response_class=StreamingResponse,
    summary="Job progress as Server-Sent Events",
)
async def job_events(
    job_id: JobId, request: Request, principal: IngestKey, services: ServicesDep
) -> StreamingResponse:
    """`event: progress` with the job (JSON) whenever it changes, `event: end` when it
    completes or fails; a comment line every 15 s keeps proxies from closing the stream."""
    row = await _owned_job(services, principal, job_id)
    settings = services.settings

    async def stream() -> AsyncIterator[str]:
        last: str | None = None
        last_sent = time.monotonic()
        give_up = last_sent + settings.job_events_max_s
        current = row
        yield "retry: 3000\n\n"
        while True:
            view = job_view(current, services.jobs.get(job_id))
            data = view.model_dump_json()
            now = time.monotonic()
            if data != last:
                last, last_sent = data, now
                yield f"event: progress\ndata: {data}\n\n"
            elif now - last_sent > 15:
                last_sent = now
                yield ": keep-alive\n\n"
            if view.status in TERMINAL:
                yield f"event: end\ndata: {data}\n\n"
                return
            if now > give_up or await request.is_disconnected():
                return
            await asyncio.sleep(settings.job_events_interval_s)
            if view.sealed_at is None or view.status == "receiving":
                fresh = await run_in_threadpool(services.store.get_job, job_id)
                current = fresh or current

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
