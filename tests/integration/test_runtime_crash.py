"""Crash safety: a stage SIGKILLed mid-run and restarted, and two instances with one killed,
still give every input exactly once to a read_committed reader."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from leadstream.runtime import dlq_topic
from leadstream.settings import Settings
from tests.support.kafka import create_topics, produce, read_all

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 6


def _start(settings: Settings, instance: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LEADSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "LEADSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
    }
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.stage_proc", instance],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )


def _committed(settings: Settings, topic: str, patience_s: float = 60) -> int:
    """Sum of the stage group's committed offsets on ``topic``.

    While a killed instance's transaction is still open (until a new instance with its id
    fences it, or the broker aborts it after ``transaction.timeout.ms``), its pending offset
    commit makes the group's offsets "unstable": the client retries the fetch until its
    timeout. Such a timeout is asked again, for up to ``patience_s``.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": settings.topic("leadstream-copy"),
        }
    )
    deadline = time.monotonic() + patience_s
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        while True:
            try:
                return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError._TIMED_OUT or time.monotonic() > deadline:
                    raise
    finally:
        consumer.close()


def _wait_committed(
    settings: Settings,
    topic: str,
    at_least: int,
    timeout: float,
    procs: list[subprocess.Popen[bytes]],
    log: Path,
) -> int:
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline:
        done = _committed(settings, topic)
        if done >= at_least:
            return done
        for p in procs:
            if p.poll() is not None:
                pytest.fail(f"stage exited with {p.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    pytest.fail(f"only {done}/{at_least} committed after {timeout}s:\n{log.read_text()[-3000:]}")


def _setup(settings: Settings, n: int) -> tuple[str, str]:
    src, dst = settings.topic("in"), settings.topic("out")
    create_topics(settings, [src, dst, settings.topic(dlq_topic("copy"))], PARTITIONS)
    produce(
        settings,
        src,
        ((f"k{i % 101}".encode(), json.dumps({"n": i}).encode(), None) for i in range(n)),
    )
    return src, dst


def _assert_exactly_once(settings: Settings, dst: str, n: int) -> None:
    out = read_all(settings, dst, expect=n, timeout=90)
    counts = Counter(json.loads(m.value())["n"] for m in out)
    missing = [i for i in range(n) if i not in counts]
    doubled = [i for i, c in counts.items() if c > 1]
    assert not missing, f"{len(missing)} lost, e.g. {missing[:5]}"
    assert not doubled, f"{len(doubled)} duplicated, e.g. {doubled[:5]}"
    assert len(out) == n


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def test_sigkill_mid_run_then_restart_is_exactly_once(settings: Settings, tmp_path: Path) -> None:
    n = 50_000
    src, dst = _setup(settings, n)
    log = tmp_path / "stage.log"
    first = _start(settings, "crash-0", log)
    try:
        _wait_committed(settings, src, 10_000, 120, [first], log)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert _committed(settings, src) < n, "the run finished before the kill: make n larger"
    second = _start(settings, "crash-0", log)  # same instance id: fences the dead one's txn
    try:
        _wait_committed(settings, src, n, 180, [second], log)
    finally:
        assert _stop(second) == 0, log.read_text()[-3000:]
    _assert_exactly_once(settings, dst, n)


def test_two_instances_one_killed_is_exactly_once(settings: Settings, tmp_path: Path) -> None:
    n = 30_000
    src, dst = _setup(settings, n)
    log = tmp_path / "stage.log"
    a = _start(settings, "pair-a", log)
    b = _start(settings, "pair-b", log)
    try:
        _wait_committed(settings, src, 8_000, 120, [a, b], log)
        b.send_signal(signal.SIGKILL)
        b.wait()
        _wait_committed(settings, src, n, 180, [a], log)
    finally:
        for p in (a, b):
            if p.poll() is None:
                _stop(p)
    assert a.returncode == 0, log.read_text()[-3000:]
    _assert_exactly_once(settings, dst, n)
