"""When batches close and how many contacts a day admits (pure, clock passed in)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from leadstream.events import derived_event_id


@dataclass(frozen=True, slots=True)
class Chunk:
    """``count`` contacts go into one batch; ``closes``: the batch is full afterwards."""

    count: int
    closes: bool


def fill(open_size: int, incoming: int, max_size: int) -> list[Chunk]:
    """How ``incoming`` contacts spread over the open batch (``open_size`` members; 0 when
    there is none) and the new batches after it; every full batch closes at once."""
    if max_size < 1:
        raise ValueError("max_size must be at least 1")
    chunks: list[Chunk] = []
    size = open_size if open_size < max_size else 0
    left = incoming
    while left > 0:
        take = min(left, max_size - size)
        size += take
        left -= take
        chunks.append(Chunk(take, size >= max_size))
        size = 0 if size >= max_size else size
    return chunks


def aged(opened_at: datetime, now: datetime, max_age_s: float) -> bool:
    """The batch has waited long enough: close it (with what it has)."""
    return (now - opened_at).total_seconds() >= max_age_s


def cap_split(used: int, cap: int | None, incoming: int) -> tuple[int, int]:
    """(admitted today, held for tomorrow) under a daily cap (None: no cap)."""
    if cap is None:
        return incoming, 0
    admit = max(0, min(incoming, cap - used))
    return admit, incoming - admit


def local_day(now: datetime, zone: ZoneInfo) -> date:
    """The calendar day of ``now`` in the cap's time zone."""
    return now.astimezone(zone).date()


def next_day(day: date) -> date:
    return day + timedelta(days=1)


def batch_id(campaign_id: str, first_event_id: str) -> str:
    """Deterministic: the campaign and the verified event of the batch's first contact (a
    contact joins one batch, ever, so no two batches share it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"leadstream:batch:{campaign_id}:{first_event_id}"))


def batch_event_id(batch: str) -> str:
    """The BatchReady event id of a batch: the same on every emission."""
    return derived_event_id("batch", batch)
