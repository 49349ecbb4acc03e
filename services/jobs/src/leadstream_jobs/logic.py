"""Pure job-state logic: apply a delta to a job's state; status, rate and ETA.

No Kafka and no clock: the caller passes ``now_ms`` (used only for ``updated_at``). Every
other time comes from the inputs (record timestamps, JobEvent times), so replaying the same
deltas gives the same state.

- status: ``failed`` once a failed event was seen (sticky); else ``completed`` when the job was
  sealed and ``processed`` (rejected + verified + dead-lettered by filter/verify) reached
  ``expected_total``; else ``processing`` when sealed; else ``receiving``.
- ``rate_per_s``: the average over the job so far: processed contacts per second from
  ``started_at`` to the latest input time (``event_time``), frozen at ``completed_at``.
- ``eta_s``: remaining / rate while processing (None when the rate is 0), 0 when completed,
  None while receiving or when failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from leadstream.jobs.state import JobState, JobStatus
from leadstream_jobs.delta import Delta

EVENT_ID_PREFIX = "jobs.deltas"


def delta_event_id(partition: int, offset: int) -> str:
    """The ``event_id`` of the state made by the delta at ``partition``/``offset``."""
    return f"{EVENT_ID_PREFIX}:{partition}:{offset}"


def already_applied(state: JobState | None, partition: int, offset: int) -> bool:
    """Whether ``state`` already reflects the delta at ``partition``/``offset``.

    A job's deltas all live on one partition, in order; the state remembers the last one
    applied in its ``event_id``, so a delta delivered twice is recognised.
    """
    if state is None:
        return False
    prefix, _, rest = state.event_id.partition(":")
    part, _, off = rest.partition(":")
    if prefix != EVENT_ID_PREFIX or not part.isdecimal() or not off.isdecimal():
        return False
    return int(part) == partition and offset <= int(off)


def apply_delta(
    state: JobState | None, job_id: str, delta: Delta, *, event_id: str, now_ms: int
) -> JobState:
    """The state of ``job_id`` after ``delta`` (``state`` None: the job's first delta)."""
    current = state if state is not None else JobState(job_id=job_id)
    failed = current.status == JobStatus.FAILED
    expected, kind, error = current.expected_total, current.kind, current.error
    started = current.started_at or None
    as_of = current.event_time
    for event in delta.events:
        if event.event_type == "created" and event.event_time:
            started = event.event_time if started is None else min(started, event.event_time)
        elif event.event_type == "sealed" and event.expected_total is not None:
            expected = event.expected_total
        elif event.event_type == "failed":
            failed, error = True, event.error or "failed"
        kind = event.kind or kind
        as_of = max(as_of, event.event_time)
    if delta.first_ms is not None:
        started = delta.first_ms if started is None else min(started, delta.first_ms)
    if delta.last_ms is not None:
        as_of = max(as_of, delta.last_ms)
    started_at = started if started is not None else as_of
    merged = replace(
        current,
        event_id=event_id,
        event_time=max(as_of, started_at),
        updated_at=now_ms,
        started_at=started_at,
        kind=kind,
        expected_total=expected,
        error=error,
        counts=_add(current.counts, delta.counts),
        rejected_by_reason=_add(current.rejected_by_reason, delta.rejected_by_reason),
        verdicts=_add(current.verdicts, delta.verdicts),
        batched=current.batched + max(0, delta.batched),
        synced=current.synced + max(0, delta.synced),
    )
    return with_progress(merged, failed=failed)


def with_progress(state: JobState, *, failed: bool = False) -> JobState:
    """``state`` with status, completed_at, rate and ETA recomputed from its counts."""
    status = job_status(state, failed=failed)
    done = status in (JobStatus.COMPLETED, JobStatus.FAILED)
    completed_at = (state.completed_at or state.event_time) if done else None
    rate = job_rate(state.processed, state.started_at, completed_at or state.event_time)
    return replace(
        state,
        status=status,
        completed_at=completed_at,
        rate_per_s=rate,
        eta_s=job_eta(status, state.expected_total, state.processed, rate),
    )


def job_status(state: JobState, *, failed: bool = False) -> JobStatus:
    if failed or state.status == JobStatus.FAILED:
        return JobStatus.FAILED
    if state.expected_total is None:
        return JobStatus.RECEIVING
    if state.processed >= state.expected_total:
        return JobStatus.COMPLETED
    return JobStatus.PROCESSING


def job_rate(processed: int, started_at: int, until_ms: int) -> float:
    """Processed contacts per second between ``started_at`` and ``until_ms``."""
    elapsed_s = (until_ms - started_at) / 1000
    if processed <= 0 or elapsed_s <= 0:
        return 0.0
    return processed / elapsed_s


def job_eta(status: str, expected: int | None, processed: int, rate: float) -> float | None:
    """Seconds until completion at ``rate``; 0 when completed; None when unknown."""
    if status == JobStatus.COMPLETED:
        return 0.0
    if status != JobStatus.PROCESSING or expected is None or rate <= 0:
        return None
    return max(0, expected - processed) / rate


def _add(old: Mapping[str, int], new: Mapping[str, int]) -> Mapping[str, int]:
    if not new:
        return old
    out = dict(old)
    for key, n in new.items():
        out[key] = max(0, out.get(key, 0) + max(0, n))
    return MappingProxyType(out)
