"""The jobs service's stall watch: deltas counted and none applied for too long, or a partition
read past its committed offset that stays there too long → restart."""

from __future__ import annotations

import threading
import time

import pytest

from leadstream.runtime import Record
from leadstream.settings import Settings
from leadstream_jobs import watch as watch_module
from leadstream_jobs.counter import EVENTS_TOPIC, counter_stage
from leadstream_jobs.watch import StallWatch
from tests.support.clock import Clock


def test_only_deltas_left_waiting_past_the_limit_are_a_stall() -> None:
    clock = Clock()
    watch = StallWatch(60.0, clock=clock)
    clock.now += 500
    assert watch.stalled_for() is None  # nothing counted: an idle service is not stalled
    watch.counted()
    clock.now += 30
    watch.counted()  # still waiting since the first
    clock.now += 30
    assert watch.stalled_for() is None  # exactly the limit
    clock.now += 1
    assert watch.stalled_for() == pytest.approx(61.0)
    watch.applied()
    assert watch.stalled_for() is None
    clock.now += 1000
    assert watch.stalled_for() is None  # applied since: nothing waits


def test_the_watch_calls_for_a_restart_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch_module, "WATCH_EVERY_S", 0.02)
    watch = StallWatch(0.1)
    reasons: list[str] = []
    called = threading.Event()

    def on_stall(reason: str) -> None:
        reasons.append(reason)
        called.set()

    watch.counted()
    stop = watch.start(on_stall)
    try:
        assert called.wait(5.0), "the watch never called for a restart"
        time.sleep(0.2)
    finally:
        stop.set()
    assert len(reasons) == 1
    assert "table applied no delta for" in reasons[0]


def test_a_table_that_keeps_applying_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch_module, "WATCH_EVERY_S", 0.02)
    watch = StallWatch(0.2)
    reasons: list[str] = []
    stop = watch.start(reasons.append)
    try:
        for _ in range(30):  # 0.9 s of deltas, each applied 30 ms after it was counted
            watch.counted()
            time.sleep(0.03)
            watch.applied()
    finally:
        stop.set()
    assert reasons == []


def test_the_counter_reports_the_batches_that_hand_out_deltas() -> None:
    settings = Settings(topic_prefix="t1.")
    calls: list[None] = []
    stage = counter_stage(settings, on_deltas=lambda: calls.append(None))

    def event(event_type: str) -> Record:
        value = {"event_type": event_type, "job_id": "job-1", "event_time": 1_700_000_000_000}
        return Record(
            topic=settings.topic(EVENTS_TOPIC),
            partition=0,
            offset=1,
            key=b"job-1",
            value=value,
            headers={},
            timestamp_ms=0,
        )

    stage.handler([event("no-such-event")])  # counts nothing: no deltas handed out
    assert calls == []
    outputs = stage.handler([event("created")])
    assert sum(len(o) for o in outputs) == 1
    assert calls == [None]


def test_a_partition_read_past_a_committed_offset_that_does_not_move_is_a_stall() -> None:
    clock = Clock()
    watch = StallWatch(60.0, clock=clock)
    watch.positions({0: (10, 5), 1: (20, 21)})  # 0: read past its commit; 1: all committed
    clock.now += 30
    watch.positions({0: (12, 5), 1: (40, 41)})  # reading on, committing nothing: still since 0
    clock.now += 31
    assert watch.partition_stalled() == (0, pytest.approx(61.0))
    assert "committed nothing of input partition 0 for 61s" in (watch.stall() or "")
    watch.positions({0: (12, 8), 1: (40, 41)})  # committed moved: waiting starts again
    assert watch.partition_stalled() is None
    clock.now += 61
    assert watch.partition_stalled() == (0, pytest.approx(61.0))


def test_positions_with_nothing_uncommitted_are_never_a_stall() -> None:
    clock = Clock()
    watch = StallWatch(60.0, clock=clock)
    for _ in range(5):
        # idle after its last commit (read 9, committed 10); right after a restart's seek
        # (read = committed = 7); never read; never committed and nothing read
        watch.positions({0: (9, 10), 1: (7, 7), 2: (None, 4), 3: (None, None)})
        clock.now += 100
    assert watch.partition_stalled() is None
    assert watch.stall() is None


def test_a_partition_no_longer_reported_is_forgotten() -> None:
    clock = Clock()
    watch = StallWatch(60.0, clock=clock)
    watch.positions({0: (10, 5), 1: (3, None)})  # 1: read, never committed
    clock.now += 61
    assert watch.partition_stalled() is not None
    watch.positions({})  # both went to another instance
    assert watch.partition_stalled() is None


def test_positions_that_stop_coming_keep_their_age() -> None:
    """The reports come from the table app's loop: a loop that stops reporting is stuck."""
    clock = Clock()
    watch = StallWatch(60.0, clock=clock)
    watch.positions({2: (10, 5)})
    clock.now += 61
    assert watch.partition_stalled() == (2, pytest.approx(61.0))
