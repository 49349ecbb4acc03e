"""The job state as a typed value, and its mapping to the ``JobState`` Avro record.

Pure data: no Kafka, no registry. Times are milliseconds since the epoch (UTC).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

RECEIVED = "contacts.raw"
FILTERED = "contacts.filtered"
REJECTED = "contacts.rejected"
VERIFIED = "contacts.verified"
BATCHES_READY = "batches.ready"
BATCHES_SYNCED = "batches.synced"
TERMINAL_DLQS = ("dlq.filter", "dlq.verify")
"""Dead letters that end a contact's way before a verdict (they count toward completion)."""


class JobStatus(StrEnum):
    """Where a job is: receiving → processing → completed, or failed."""

    RECEIVING = "receiving"  # created (or first seen), total not known yet
    PROCESSING = "processing"  # sealed: the expected total is known
    COMPLETED = "completed"  # every expected contact was rejected, verified or dead-lettered
    FAILED = "failed"  # ingest reported the job failed


_EMPTY: Mapping[str, int] = MappingProxyType({})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class JobState:
    """The tracker's view of one job (the value of ``jobs.state``, key ``job_id``).

    ``counts`` is keyed by the topic a record was counted on (``contacts.raw``,
    ``contacts.filtered``, ``contacts.rejected``, ``contacts.verified``, ``batches.ready``,
    ``batches.synced``, ``dlq.<stage>``) or ``<stage>.<outcome>`` (``filter.rejected``,
    ``verify.rejected``, ``jobs.invalid_headers``). ``batches.*`` count batches; ``batched``
    and ``synced`` count the contacts in them.
    """

    job_id: str
    status: str = JobStatus.RECEIVING
    started_at: int = 0
    updated_at: int = 0
    event_time: int = 0  # the time of the latest input reflected here (record timestamps)
    event_id: str = ""  # derived from the tracker input that produced this state
    source: str = "jobs"
    kind: str | None = None
    expected_total: int | None = None
    counts: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    rejected_by_reason: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    verdicts: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    batched: int = 0
    synced: int = 0
    completed_at: int | None = None
    rate_per_s: float = 0.0
    eta_s: float | None = None
    error: str | None = None

    @property
    def received(self) -> int:
        """Contacts of the job seen on ``contacts.raw``."""
        return self.counts.get(RECEIVED, 0)

    @property
    def rejected(self) -> int:
        return self.counts.get(REJECTED, 0)

    @property
    def verified(self) -> int:
        return self.counts.get(VERIFIED, 0)

    @property
    def dead_lettered(self) -> int:
        """Records of the job on any ``dlq.*`` topic."""
        return sum(n for k, n in self.counts.items() if k.startswith("dlq."))

    @property
    def processed(self) -> int:
        """Contacts that reached a terminal outcome of filter/verify: rejected, verified, or
        dead-lettered by filter or verify. The job completes when this reaches the total."""
        return self.rejected + self.verified + sum(self.counts.get(q, 0) for q in TERMINAL_DLQS)

    @property
    def done(self) -> bool:
        """Completed or failed."""
        return self.status in (JobStatus.COMPLETED, JobStatus.FAILED)

    def to_record(self) -> dict[str, Any]:
        """The ``JobState`` Avro record (a dict for the serde)."""
        return {
            "event_id": self.event_id,
            "job_id": self.job_id,
            "source": self.source,
            "event_time": self.event_time,
            "status": str(self.status),
            "kind": self.kind,
            "expected_total": self.expected_total,
            "counts": dict(self.counts),
            "rejected_by_reason": dict(self.rejected_by_reason),
            "verdicts": dict(self.verdicts),
            "batched": self.batched,
            "synced": self.synced,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "completed_at": self.completed_at,
            "rate_per_s": self.rate_per_s,
            "eta_s": self.eta_s,
            "error": self.error,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> JobState:
        """Read a decoded ``JobState`` record (timestamps as datetimes or milliseconds)."""
        completed = record.get("completed_at")
        eta = record.get("eta_s")
        return cls(
            job_id=str(record["job_id"]),
            status=_status(record.get("status")),
            started_at=to_millis(record.get("started_at")),
            updated_at=to_millis(record.get("updated_at")),
            event_time=to_millis(record.get("event_time")),
            event_id=str(record.get("event_id") or ""),
            source=str(record.get("source") or "jobs"),
            kind=record.get("kind"),
            expected_total=record.get("expected_total"),
            counts=MappingProxyType(dict(record.get("counts") or {})),
            rejected_by_reason=MappingProxyType(dict(record.get("rejected_by_reason") or {})),
            verdicts=MappingProxyType(dict(record.get("verdicts") or {})),
            batched=int(record.get("batched") or 0),
            synced=int(record.get("synced") or 0),
            completed_at=None if completed is None else to_millis(completed),
            rate_per_s=float(record.get("rate_per_s") or 0.0),
            eta_s=None if eta is None else float(eta),
            error=record.get("error"),
        )


def to_millis(value: object) -> int:
    """Milliseconds since the epoch of a ``timestamp-millis`` value (datetime or int)."""
    if value is None:
        return 0
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return (aware - _EPOCH) // timedelta(milliseconds=1)
    if isinstance(value, int | float):
        return int(value)
    raise TypeError(f"not a timestamp: {value!r}")


def _status(value: object) -> str:
    """A known :class:`JobStatus`, or the text as is (a newer tracker may add statuses)."""
    text = str(value or JobStatus.RECEIVING)
    try:
        return JobStatus(text)
    except ValueError:
        return text
