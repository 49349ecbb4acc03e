"""A stage's /metrics on the real broker: the numbers match what the stage did.

The stage runs in-process with the health/metrics server a service runs (``HealthServer``), and
the test scrapes it over HTTP and parses the Prometheus text format. Each test names its stage
uniquely, so the series it reads are its own (the metrics live in the process-wide registry).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Sequence

import pytest
from prometheus_client.parser import text_string_to_metric_families

from leadstream.runtime import Output, Record, RuntimeConfig, Stage, StageRunner, dlq_topic
from leadstream.runtime.health import HealthServer
from leadstream.settings import Settings
from tests.support.kafka import JsonCodec, create_topics, produce, read_all

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    """Every sample of ``/metrics``, keyed by (sample name, labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _stage_name() -> str:
    return f"m{uuid.uuid4().hex[:10]}"


def test_counters_histograms_and_outcomes_match_the_committed_work(settings: Settings) -> None:
    """12 good records (4 rejected, with reasons), 3 undecodable ones; event times 2 min old."""
    name = _stage_name()
    src, out, rej = settings.topic("in"), settings.topic("out"), settings.topic("rejected")
    create_topics(settings, [src, out, rej, settings.topic(dlq_topic(name))], partitions=1)
    old_ms = int(time.time() * 1000) - 120_000

    def handle(records: Sequence[Record]) -> list[list[Output]]:
        outputs = []
        for r in records:
            n = r.value["n"]
            if n % 3 == 0:
                outputs.append([Output("rejected", {"n": n}, headers={"reason": "multiple_of_3"})])
            else:
                outputs.append([Output("out", {"n": n}, headers={"reason": "ok"})])
        return outputs

    good = [json.dumps({"n": i, "event_time": old_ms}).encode() for i in range(1, 13)]
    bad = [b"not json"] * 3
    produce(settings, src, ((None, v, None) for v in good + bad))
    stage = Stage(name, ["in"], handle, rejected_topics=["rejected"], outcome_header="reason")
    config = RuntimeConfig(instance_id="metrics-0", batch_size=100, poll_timeout_s=0.2)
    server = HealthServer(lambda: (True, {})).start()
    try:
        result = StageRunner(stage, settings, JsonCodec(), config).run(
            max_records=15, idle_timeout_s=30
        )
        samples = scrape(server.port)
    finally:
        server.close()
    assert result.records_in == 15
    assert len(read_all(settings, out, expect=8)) == 8

    assert value(samples, "leadstream_stage_records_in_total", stage=name) == 15
    assert value(samples, "leadstream_stage_records_out_total", stage=name, topic=out) == 8
    assert value(samples, "leadstream_stage_records_out_total", stage=name, topic=rej) == 4
    assert value(samples, "leadstream_stage_records_rejected_total", stage=name, topic=rej) == 4
    assert value(samples, "leadstream_stage_records_rejected_total", stage=name, topic=out) is None
    assert (
        value(samples, "leadstream_stage_outcomes_total", stage=name, topic=rej, outcome="ok")
        is None
    )
    assert (
        value(
            samples,
            "leadstream_stage_outcomes_total",
            stage=name,
            topic=rej,
            outcome="multiple_of_3",
        )
        == 4
    )
    assert (
        value(
            samples, "leadstream_stage_dead_lettered_total", stage=name, error="UndecodableRecord"
        )
        == 3
    )
    assert value(samples, "leadstream_stage_batch_records_sum", stage=name) == 15
    batches = value(samples, "leadstream_stage_batch_records_count", stage=name)
    assert batches is not None
    assert batches >= 1
    assert value(samples, "leadstream_stage_batch_seconds_count", stage=name) == batches
    assert value(samples, "leadstream_stage_transaction_seconds_count", stage=name) == batches
    assert value(samples, "leadstream_stage_transaction_aborts_total", stage=name) is None

    # End-to-end latency is measured from each event's own event_time (2 minutes old), not
    # from its Kafka timestamp (a moment ago); undecodable records fall back to the latter.
    e2e_count = value(samples, "leadstream_stage_end_to_end_seconds_count", stage=name)
    assert e2e_count is not None
    assert e2e_count >= 1
    under_a_minute = value(
        samples, "leadstream_stage_end_to_end_seconds_bucket", stage=name, le="60.0"
    )
    at_most_an_hour = value(
        samples, "leadstream_stage_end_to_end_seconds_bucket", stage=name, le="3600.0"
    )
    assert at_most_an_hour == e2e_count
    assert under_a_minute is not None
    assert under_a_minute <= 3, "only the undecodable records may be younger than a minute"
    assert under_a_minute < e2e_count


def test_consumer_lag_gauge_follows_the_position(settings: Settings) -> None:
    """20 records, batches of 5: while the second batch is in the handler, lag is 15."""
    name = _stage_name()
    src = settings.topic("in")
    create_topics(settings, [src, settings.topic("out"), settings.topic(dlq_topic(name))], 1)
    produce(settings, src, ((None, json.dumps({"n": i}).encode(), None) for i in range(20)))
    in_second_batch = threading.Event()
    release = threading.Event()
    calls = 0

    def handle(records: Sequence[Record]) -> list[list[Output]]:
        nonlocal calls
        calls += 1
        if calls == 2:
            in_second_batch.set()
            release.wait(60)
        return [[Output("out", r.value)] for r in records]

    config = RuntimeConfig(
        instance_id="metrics-lag", batch_size=5, poll_timeout_s=0.2, lag_interval_s=0
    )
    runner = StageRunner(Stage(name, ["in"], handle), settings, JsonCodec(), config)
    server = HealthServer(lambda: (True, {})).start()
    done: list[int] = []
    thread = threading.Thread(
        target=lambda: done.append(runner.run(max_records=20, idle_timeout_s=30).records_in)
    )
    thread.start()
    try:
        assert in_second_batch.wait(60), "the second batch never reached the handler"
        during = scrape(server.port)
        release.set()
        thread.join(60)
        after = scrape(server.port)
    finally:
        release.set()
        thread.join(60)
        server.close()
    assert done == [20]
    assert (
        value(during, "leadstream_stage_consumer_lag", stage=name, topic=src, partition="0") == 15
    )
    # A stopped runner owns no partition: its lag series are gone, not frozen.
    assert (
        value(after, "leadstream_stage_consumer_lag", stage=name, topic=src, partition="0") is None
    )
    last_loop = value(after, "leadstream_stage_last_loop_timestamp", stage=name)
    assert last_loop is not None
    assert last_loop > 0
