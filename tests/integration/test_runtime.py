"""The stage runtime on the real broker: exactly-once outputs, dead letters, retries."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from leadstream.runtime import (
    BadRecord,
    FatalStageError,
    Output,
    Record,
    RetryLater,
    RuntimeConfig,
    Stage,
    StageRunner,
    dlq_topic,
)
from leadstream.runtime import deadletter as dl
from leadstream.settings import Settings
from tests.support.kafka import JsonCodec, create_topics, produce, read_all

pytestmark = pytest.mark.integration

FAST = RuntimeConfig(
    instance_id="test-0",
    batch_size=200,
    poll_timeout_s=0.2,
    retry_base_s=0.2,
    retry_cap_s=0.5,
    max_retry_attempts=3,
)


def _topics(settings: Settings, stage: str) -> tuple[str, str, str]:
    src, dst, dlq = settings.topic("in"), settings.topic("out"), settings.topic(dlq_topic(stage))
    create_topics(settings, [src, dst, dlq])
    return src, dst, dlq


def _json(i: int, **extra: Any) -> bytes:
    return json.dumps({"n": i, **extra}).encode()


def double(records: Sequence[Record]) -> list[list[Output]]:
    return [[Output("out", {"n": r.value["n"] * 2}, key=r.key)] for r in records]


def test_passthrough_outputs_each_input_once_and_carries_job_header(settings: Settings) -> None:
    src, dst, _ = _topics(settings, "double")
    n = 2_000
    produce(
        settings, src, ((f"k{i % 17}".encode(), _json(i), [("job_id", b"job-1")]) for i in range(n))
    )
    runner = StageRunner(Stage("double", ["in"], double), settings, JsonCodec(), FAST)
    result = runner.run(max_records=n, idle_timeout_s=15)
    assert result.records_in == n
    assert result.records_out == n
    assert result.dead_lettered == 0
    out = read_all(settings, dst, expect=n)
    values = sorted(json.loads(m.value())["n"] for m in out)
    assert values == [2 * i for i in range(n)]
    assert all(dict(m.headers())["job_id"] == b"job-1" for m in out)
    # Per-key order is kept: the doubled values of one key come out increasing.
    per_key: dict[bytes, list[int]] = {}
    for m in out:
        per_key.setdefault(m.key(), []).append(json.loads(m.value())["n"])
    assert all(v == sorted(v) for v in per_key.values())


def test_restarted_runner_resumes_from_committed_offsets(settings: Settings) -> None:
    src, dst, _ = _topics(settings, "double")
    produce(settings, src, ((None, _json(i), None) for i in range(300)))
    stage = Stage("double", ["in"], double)
    first = StageRunner(stage, settings, JsonCodec(), FAST).run(max_records=100, idle_timeout_s=10)
    assert first.records_in >= 100
    rest = StageRunner(stage, settings, JsonCodec(), FAST).run(idle_timeout_s=3)
    assert first.records_in + rest.records_in == 300
    out = read_all(settings, dst, expect=300)
    assert sorted(json.loads(m.value())["n"] for m in out) == [2 * i for i in range(300)]


def test_poison_records_reach_the_dlq_with_headers_while_others_flow(
    settings: Settings,
) -> None:
    src, dst, dlq = _topics(settings, "picky")

    def picky(records: Sequence[Record]) -> list[list[Output]]:
        out = []
        for r in records:
            if r.value.get("boom"):
                raise ZeroDivisionError("handler bug on purpose")
            if r.value.get("bad"):
                raise BadRecord("cannot ever be processed")
            out.append([Output("out", r.value, key=r.key)])
        return out

    items: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]] | None]] = [
        (b"a", _json(i), None) for i in range(50)
    ]
    items[10] = (b"a", b"\x00\x01not json", [("trace", b"t-1")])
    items[20] = (b"a", _json(20, boom=True), None)
    items[30] = (b"a", _json(30, bad=True), None)
    produce(settings, src, items)
    result = StageRunner(Stage("picky", ["in"], picky), settings, JsonCodec(), FAST).run(
        idle_timeout_s=5
    )
    assert result.records_out == 47
    assert result.dead_lettered == 3
    assert len(read_all(settings, dst, expect=47)) == 47
    dead = read_all(settings, dlq, expect=3)
    assert len(dead) == 3
    by_offset = {int(dict(m.headers())[dl.SOURCE_OFFSET]): m for m in dead}
    assert set(by_offset) == {10, 20, 30}
    h10 = dict(by_offset[10].headers())
    assert by_offset[10].value() == b"\x00\x01not json"  # the original bytes, untouched
    assert h10[dl.SOURCE_TOPIC] == src.encode()
    assert h10[dl.STAGE] == b"picky"
    assert h10[dl.ERROR_CLASS] == b"UndecodableRecord"
    assert h10[dl.ERROR_MESSAGE].startswith(b"JSONDecodeError")
    assert h10["trace"] == b"t-1"  # original headers are kept
    assert int(h10[dl.TIME]) > 0
    assert dict(by_offset[20].headers())[dl.ERROR_CLASS] == b"ZeroDivisionError"
    assert b"on purpose" in dict(by_offset[20].headers())[dl.ERROR_MESSAGE]
    assert dict(by_offset[30].headers())[dl.ERROR_CLASS] == b"BadRecord"


def test_retry_later_redoes_the_batch_without_duplicates(settings: Settings) -> None:
    src, dst, _ = _topics(settings, "flaky")
    calls = Counter[str]()

    def flaky(records: Sequence[Record]) -> list[list[Output]]:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise RetryLater("database briefly down")
        return [[Output("out", r.value, key=r.key)] for r in records]

    produce(settings, src, ((b"k", _json(i), None) for i in range(100)))
    result = StageRunner(Stage("flaky", ["in"], flaky), settings, JsonCodec(), FAST).run(
        idle_timeout_s=4
    )
    assert result.retries == 2
    assert result.dead_lettered == 0
    out = read_all(settings, dst, expect=100)
    assert [json.loads(m.value())["n"] for m in out] == list(range(100))  # once, in order


def test_retries_are_bounded_then_the_record_is_dead_lettered(settings: Settings) -> None:
    src, dst, dlq = _topics(settings, "stuck")

    def stuck(records: Sequence[Record]) -> list[list[Output]]:
        if any(r.value["n"] == 5 for r in records):
            raise RetryLater("verifier keeps timing out")
        return [[Output("out", r.value, key=r.key)] for r in records]

    produce(settings, src, ((b"k", _json(i), None) for i in range(20)))
    result = StageRunner(Stage("stuck", ["in"], stuck), settings, JsonCodec(), FAST).run(
        idle_timeout_s=5
    )
    assert result.retries == FAST.max_retry_attempts
    assert result.dead_lettered == 1
    out = read_all(settings, dst, expect=19)
    assert [json.loads(m.value())["n"] for m in out] == [i for i in range(20) if i != 5]
    dead = read_all(settings, dlq, expect=1)
    assert [dict(m.headers())[dl.ERROR_CLASS] for m in dead] == [b"RetryLater"]


def test_a_second_instance_with_the_same_id_fences_the_first(settings: Settings) -> None:
    """Zombie fencing: the old instance stops with FatalStageError, nothing is doubled."""
    src, dst, _ = _topics(settings, "slow")
    n = 3_000
    produce(settings, src, ((f"k{i % 7}".encode(), _json(i), None) for i in range(n)))

    def slow(records: Sequence[Record]) -> list[list[Output]]:
        time.sleep(0.05)
        return [[Output("out", r.value, key=r.key)] for r in records]

    config = RuntimeConfig(instance_id="same", batch_size=50, poll_timeout_s=0.2)
    stage = Stage("slow", ["in"], slow)
    zombie = StageRunner(stage, settings, JsonCodec(), config)
    failure: list[BaseException] = []

    def run_zombie() -> None:
        try:
            zombie.run(idle_timeout_s=30)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run_zombie)
    thread.start()
    deadline = time.monotonic() + 60
    while zombie._result.records_in < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert zombie._result.records_in >= 200, "the first instance never got going"
    successor = StageRunner(stage, settings, JsonCodec(), config)
    result = successor.run(idle_timeout_s=8)
    thread.join(60)
    assert not thread.is_alive()
    assert len(failure) == 1
    assert isinstance(failure[0], FatalStageError)
    assert "fenced" in str(failure[0])
    assert result.records_in > 0
    out = read_all(settings, dst, expect=n)
    assert sorted(json.loads(m.value())["n"] for m in out) == list(range(n))
