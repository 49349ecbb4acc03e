"""What a stage handler receives and returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Headers = list[tuple[str, bytes]]
JOB_ID_HEADER = "job_id"
"""Header carrying the job id on every stage output, so counting needs no Avro decode."""
REPLAY_ID_HEADER = "replay.id"
"""Set on a record re-published by a replay (``leadstream.ops.replay``); the runtime carries it
from an input to its outputs, so everything a replayed record causes is marked too."""
REPLAY_OF_HEADER = "replay.of"
"""On a re-published record only: ``<topic>:<partition>:<offset>`` of the original."""


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed, decoded input record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: dict[str, Any]
    headers: Mapping[str, bytes]
    timestamp_ms: int

    @property
    def job_id(self) -> str | None:
        raw = self.headers.get(JOB_ID_HEADER)
        return raw.decode() if raw else None


@dataclass(frozen=True, slots=True)
class Output:
    """One record to produce. ``topic`` is the logical name (the runtime adds the prefix).

    ``value`` None is a tombstone. ``headers`` are added to the input's ``job_id`` and
    ``replay.id`` headers, which the runtime carries over unless the output sets its own.
    """

    topic: str
    value: dict[str, Any] | None
    key: str | bytes | None = None
    headers: Mapping[str, str | bytes] = field(default_factory=dict)


def header_list(
    headers: dict[str, str | bytes | None] | list[tuple[str, str | bytes | None]] | None,
) -> Headers:
    """Kafka client headers as ``[(name, bytes)]`` (None values become empty bytes)."""
    items = headers.items() if isinstance(headers, dict) else headers or ()
    return [(k, v.encode() if isinstance(v, str) else v or b"") for k, v in items]
