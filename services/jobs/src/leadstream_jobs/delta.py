"""A delta: what one batch of stage outputs adds to one job (the internal ``jobs.deltas``).

The counter sums a batch per job into a :class:`Delta`; the table applies it. On the wire it
is a small JSON object (an internal topic of the tracker, not an Avro contract).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

WIRE_VERSION = 1


@dataclass(slots=True)
class JobEventFact:
    """The part of a ``JobEvent`` the tracker uses."""

    event_type: str  # created | sealed | failed (others are ignored)
    event_time: int  # ms
    expected_total: int | None = None
    kind: str | None = None
    error: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": self.event_type,
            "time": self.event_time,
            "expected_total": self.expected_total,
            "kind": self.kind,
            "error": self.error,
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> JobEventFact:
        total = data.get("expected_total")
        return cls(
            event_type=str(data.get("type") or ""),
            event_time=_count(data.get("time")),
            expected_total=None if total is None else _count(total),
            kind=_text(data.get("kind")),
            error=_text(data.get("error")),
        )


@dataclass(slots=True)
class Delta:
    """Counts to add to one job, the time span of the records counted, and job events."""

    counts: dict[str, int] = field(default_factory=dict)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    verdicts: dict[str, int] = field(default_factory=dict)
    batched: int = 0
    synced: int = 0
    first_ms: int | None = None  # earliest record timestamp counted
    last_ms: int | None = None  # latest record timestamp counted
    events: list[JobEventFact] = field(default_factory=list)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def seen(self, timestamp_ms: int) -> None:
        """Widen the time span to ``timestamp_ms``."""
        if self.first_ms is None or timestamp_ms < self.first_ms:
            self.first_ms = timestamp_ms
        if self.last_ms is None or timestamp_ms > self.last_ms:
            self.last_ms = timestamp_ms

    def to_wire(self) -> dict[str, Any]:
        return {
            "v": WIRE_VERSION,
            "counts": self.counts,
            "rejected_by_reason": self.rejected_by_reason,
            "verdicts": self.verdicts,
            "batched": self.batched,
            "synced": self.synced,
            "first_ms": self.first_ms,
            "last_ms": self.last_ms,
            "events": [e.to_wire() for e in self.events],
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Delta:
        """Read a wire delta; numbers are clamped to be non-negative."""
        first, last = data.get("first_ms"), data.get("last_ms")
        return cls(
            counts=_counts(data.get("counts")),
            rejected_by_reason=_counts(data.get("rejected_by_reason")),
            verdicts=_counts(data.get("verdicts")),
            batched=_count(data.get("batched")),
            synced=_count(data.get("synced")),
            first_ms=None if first is None else _count(first),
            last_ms=None if last is None else _count(last),
            events=[JobEventFact.from_wire(e) for e in data.get("events") or () if _is_map(e)],
        )


def _is_map(value: object) -> bool:
    return isinstance(value, Mapping)


def _count(value: object) -> int:
    """A non-negative int (bad values count as 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(0, int(value))


def _counts(value: object) -> dict[str, int]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): _count(v) for k, v in value.items()}


def _text(value: object) -> str | None:
    return None if value is None else str(value)
