"""Count stage outputs per job from their Kafka headers alone (no value is decoded).

:func:`count_record` adds one record of a stage topic to the job named by its ``job_id``
header; :func:`count_job_event` adds a decoded ``JobEvent``. Both fill a dict of
:class:`Delta` by job id, which the counter then sends to the table, keyed by job id.
The header conventions are in ``docs/events.md`` and :mod:`leadstream.jobs.headers`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any

from leadstream.jobs import headers as h
from leadstream.jobs.state import (
    BATCHES_READY,
    BATCHES_SYNCED,
    FILTERED,
    RECEIVED,
    REJECTED,
    VERIFIED,
    to_millis,
)
from leadstream_jobs.delta import Delta, JobEventFact

Headers = Mapping[str, bytes | None] | Sequence[tuple[str, bytes | None]]
Deltas = MutableMapping[str, Delta]

INVALID_HEADERS = "jobs.invalid_headers"
"""Count of records whose ``count``/``job_counts`` header could not be read."""
UNSPECIFIED = "unspecified"  # a reason/verdict header is missing
INVALID = "invalid"  # a reason/verdict header is not a short code
OTHER = "other"  # a verdict outside the known set
VERDICTS = frozenset({"deliverable", "risky", "undeliverable", "unknown"})
JOB_EVENTS = frozenset({"created", "sealed", "failed"})
MAX_JOB_ID = 200
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_SIMPLE = {RECEIVED, FILTERED}
_BATCHES = {BATCHES_READY: "batched", BATCHES_SYNCED: "synced"}
_COUNTED = {RECEIVED, FILTERED, REJECTED, VERIFIED}


def header_map(headers: Headers | None) -> dict[str, bytes]:
    """Headers as a dict (the last value of a repeated key wins; None becomes b"")."""
    if headers is None:
        return {}
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return {k: v or b"" for k, v in pairs}


def job_of(headers: Mapping[str, bytes]) -> str | None:
    """The job id in the ``job_id`` header, or None when absent or not usable."""
    raw = headers.get(h.JOB_ID)
    if not raw:
        return None
    try:
        job_id = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    return job_id if 0 < len(job_id) <= MAX_JOB_ID else None


def count_record(topic: str, headers: Headers | None, timestamp_ms: int, into: Deltas) -> None:
    """Add one record of the logical ``topic`` to its job's delta in ``into``."""
    hs = header_map(headers)
    if topic in _BATCHES:
        _count_batch(topic, hs, timestamp_ms, into)
        return
    if hs.get(h.REPLAY_ID):  # a replayed contact's outcome: counted on its first pass
        return
    job_id = job_of(hs)
    if job_id is None or not (topic in _COUNTED or topic.startswith("dlq.")):
        return
    delta = _delta(into, job_id)
    if topic in _SIMPLE:
        delta.add(topic)
    elif topic == REJECTED:
        delta.add(topic)
        _bump(delta.rejected_by_reason, _code(hs.get(h.REASON)))
        stage = hs.get(h.STAGE)
        if stage and _CODE.fullmatch(_text(stage)):
            delta.add(f"{_text(stage)}.rejected")
    elif topic == VERIFIED:
        delta.add(topic)
        verdict = _code(hs.get(h.VERDICT))
        _bump(delta.verdicts, verdict if verdict in VERDICTS or verdict == UNSPECIFIED else OTHER)
    else:  # a dead-letter topic
        dlq_stage = _text(hs.get(h.DLQ_STAGE) or b"")
        delta.add(f"dlq.{dlq_stage}" if _CODE.fullmatch(dlq_stage) else topic)
    delta.seen(timestamp_ms)


def count_job_event(event: Mapping[str, Any], into: Deltas) -> None:
    """Add a decoded ``JobEvent`` (created, sealed, failed) to its job's delta."""
    event_type = str(event.get("event_type") or "")
    job_id = str(event.get("job_id") or "")
    if event_type not in JOB_EVENTS or not 0 < len(job_id) <= MAX_JOB_ID:
        return
    details = event.get("details") or {}
    total = event.get("expected_total")
    error = None
    if event_type == "failed":
        error = str(details.get("error") or details.get("reason") or "failed")
    _delta(into, job_id).events.append(
        JobEventFact(
            event_type=event_type,
            event_time=to_millis(event.get("event_time")),
            expected_total=None if total is None else max(0, int(total)),
            kind=event.get("kind"),
            error=error,
        )
    )


def count_records(records: Iterable[tuple[str, Headers | None, int]]) -> dict[str, Delta]:
    """The deltas of (logical topic, headers, timestamp) triples, by job id."""
    deltas: dict[str, Delta] = {}
    for topic, hs, ts in records:
        count_record(topic, hs, ts, deltas)
    return deltas


def _count_batch(topic: str, hs: Mapping[str, bytes], timestamp_ms: int, into: Deltas) -> None:
    field = _BATCHES[topic]
    spread = hs.get(h.JOB_COUNTS)
    per_job = _job_counts(spread) if spread is not None else {}
    if not per_job:  # one job: job_id + count (also when job_counts is unreadable)
        job_id = job_of(hs)
        if job_id is None:
            return
        per_job = {job_id: _number(hs.get(h.COUNT))}
    for job, n in per_job.items():
        delta = _delta(into, job)
        delta.add(topic)
        if n is None:
            delta.add(INVALID_HEADERS)
        elif field == "batched":
            delta.batched += n
        else:
            delta.synced += n
        delta.seen(timestamp_ms)


def _job_counts(raw: bytes) -> dict[str, int | None]:
    """``{"job": n, …}`` from the ``job_counts`` header; unusable entries map to None."""
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, int | None] = {}
    for job, n in data.items():
        job_id = str(job).strip()
        if 0 < len(job_id) <= MAX_JOB_ID:
            ok = isinstance(n, int) and not isinstance(n, bool) and n >= 0
            out[job_id] = n if ok else None
    return out


def _number(raw: bytes | None) -> int | None:
    """A non-negative decimal count, or None when missing or not one."""
    text = _text(raw or b"").strip()
    if not text.isdecimal() or len(text) > 12:
        return None
    return int(text)


def _code(raw: bytes | None) -> str:
    if raw is None or raw == b"":
        return UNSPECIFIED
    text = _text(raw).strip()
    return text if _CODE.fullmatch(text) else INVALID


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _delta(into: Deltas, job_id: str) -> Delta:
    delta = into.get(job_id)
    if delta is None:
        delta = into[job_id] = Delta()
    return delta
