"""Batch closing, daily caps and the BatchReady headers (pure; tables)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from leadstream.db.batches import ClosedBatch
from leadstream.errors import ConfigError
from leadstream_batch.closing import (
    Chunk,
    aged,
    batch_event_id,
    batch_id,
    cap_split,
    fill,
    local_day,
    next_day,
)
from leadstream_batch.config import BatchSettings
from leadstream_batch.ready import batch_headers, batch_ready_value

FILL = [
    # (members in the open batch, incoming, max) → chunks
    (0, 0, 500, []),
    (0, 1, 500, [Chunk(1, False)]),
    (0, 500, 500, [Chunk(500, True)]),
    (0, 501, 500, [Chunk(500, True), Chunk(1, False)]),
    (498, 5, 500, [Chunk(2, True), Chunk(3, False)]),
    (499, 1, 500, [Chunk(1, True)]),
    (10, 1200, 500, [Chunk(490, True), Chunk(500, True), Chunk(210, False)]),
    (0, 3, 1, [Chunk(1, True), Chunk(1, True), Chunk(1, True)]),
    (500, 2, 500, [Chunk(2, False)]),  # a full batch is never added to (it is closed)
]


@pytest.mark.parametrize(("open_size", "incoming", "max_size", "chunks"), FILL)
def test_fill_table(open_size: int, incoming: int, max_size: int, chunks: list[Chunk]) -> None:
    assert fill(open_size, incoming, max_size) == chunks
    assert sum(ch.count for ch in chunks) == incoming


def test_fill_rejects_a_zero_maximum() -> None:
    with pytest.raises(ValueError, match="max_size"):
        fill(0, 1, 0)


T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

AGE = [
    (timedelta(seconds=0), 300.0, False),
    (timedelta(seconds=299.9), 300.0, False),
    (timedelta(seconds=300), 300.0, True),
    (timedelta(hours=2), 300.0, True),
    (timedelta(seconds=1), 0.5, True),
]


@pytest.mark.parametrize(("waited", "max_age", "closes"), AGE)
def test_age_table(waited: timedelta, max_age: float, closes: bool) -> None:
    assert aged(T0, T0 + waited, max_age) is closes


CAP = [
    # (admitted today already, cap, incoming) → (admit, hold)
    (0, None, 7, (7, 0)),
    (0, 5, 3, (3, 0)),
    (3, 5, 3, (2, 1)),
    (5, 5, 4, (0, 4)),
    (9, 5, 1, (0, 1)),  # a cap lowered below today's count admits nothing
    (0, 0, 2, (0, 2)),
]


@pytest.mark.parametrize(("used", "cap", "incoming", "split"), CAP)
def test_cap_table(used: int, cap: int | None, incoming: int, split: tuple[int, int]) -> None:
    assert cap_split(used, cap, incoming) == split


def test_days_are_counted_in_the_cap_zone() -> None:
    late = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    assert local_day(late, ZoneInfo("UTC")) == date(2026, 11, 23)
    assert local_day(late, ZoneInfo("Europe/Berlin")) == date(2026, 11, 24)
    assert local_day(late, ZoneInfo("America/New_York")) == date(2026, 11, 23)
    assert next_day(date(2026, 12, 31)) == date(2027, 1, 1)


def test_batch_ids_are_deterministic() -> None:
    assert batch_id("10", "ev-1") == batch_id("10", "ev-1")
    assert batch_id("10", "ev-1") != batch_id("11", "ev-1")
    assert batch_id("10", "ev-1") != batch_id("10", "ev-2")
    assert batch_event_id("b") == batch_event_id("b") != batch_event_id("c")


def _contact(n: int, job: str | None) -> dict[str, object]:
    return {
        "contact_id": f"c{n}",
        "email": f"p{n}@x.example",
        "verdict": "deliverable",
        "job_id": job,
        "verified_event_id": f"v{n}",
    }


HEADERS = [
    ("one job", ["j1", "j1"], {"count": "2", "job_id": "j1"}),
    ("no job", [None, None], {"count": "2", "job_id": ""}),
    (
        "two jobs",
        ["j1", "j2", "j1"],
        {"count": "3", "job_id": "", "job_counts": {"j1": 2, "j2": 1}},
    ),
    ("a job and none", ["j1", None], {"count": "2", "job_id": "", "job_counts": {"j1": 1}}),
]


@pytest.mark.parametrize(("why", "jobs", "want"), HEADERS, ids=[h[0] for h in HEADERS])
def test_batch_ready_headers(why: str, jobs: list[str | None], want: dict[str, object]) -> None:
    headers: dict[str, object] = dict(batch_headers([_contact(i, j) for i, j in enumerate(jobs)]))
    if "job_counts" in headers:
        headers["job_counts"] = json.loads(str(headers["job_counts"]))
    assert headers == want, why


def test_batch_ready_value_comes_from_the_database_row() -> None:
    closed = ClosedBatch("b1", "e1", "10", "r-1", T0, T0 + timedelta(seconds=5), "age", "Camp")
    contacts = [_contact(1, "j1")]
    value = batch_ready_value(closed, contacts)
    assert value["event_time"] == int((T0 + timedelta(seconds=5)).timestamp() * 1000)
    assert value["opened_at"] == int(T0.timestamp() * 1000)
    assert (value["batch_id"], value["closed_reason"], value["job_id"]) == ("b1", "age", "j1")
    assert batch_ready_value(closed, contacts) == value


@pytest.mark.parametrize(
    "env",
    [
        {"batch_max_size": 501},
        {"batch_max_size": 0},
        {"batch_verdicts": "deliverable,maybe"},
        {"batch_max_age_s": 0},
        {"batch_cap_timezone": "Mars/Olympus"},
        {"batch_daily_cap": -1},
    ],
)
def test_settings_refuse_what_cannot_work(env: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        BatchSettings.model_validate(env)


def test_settings_verdict_policy() -> None:
    assert BatchSettings().allowed_verdicts == {"deliverable"}
    assert BatchSettings(batch_verdicts="Deliverable, risky").allowed_verdicts == {
        "deliverable",
        "risky",
    }
