"""Prometheus metrics of every stage (one set per process, labelled by stage).

Counters count what a *committed* transaction did: a batch that was retried or aborted is
counted once, when it finally commits, so ``records_in`` equals the input offsets committed.
``docs/observability.md`` lists every metric of every service.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS_IN = Counter(
    "leadstream_stage_records_in", "Input records committed (handled or dead-lettered)", ["stage"]
)
RECORDS_OUT = Counter(
    "leadstream_stage_records_out", "Records produced, by output topic", ["stage", "topic"]
)
RECORDS_REJECTED = Counter(
    "leadstream_stage_records_rejected",
    "Records produced to one of the stage's rejection topics (a subset of records_out)",
    ["stage", "topic"],
)
OUTCOMES = Counter(
    "leadstream_stage_outcomes",
    "Records produced, by output topic and the value of the stage's outcome header",
    ["stage", "topic", "outcome"],
)
DEAD_LETTERED = Counter(
    "leadstream_stage_dead_lettered",
    "Records sent to the dead-letter topic, by error class",
    ["stage", "error"],
)
RETRIES = Counter("leadstream_stage_retries", "Batches put back for a later retry", ["stage"])
ABORTS = Counter("leadstream_stage_transaction_aborts", "Aborted transactions", ["stage"])
BATCH_RECORDS = Histogram(
    "leadstream_stage_batch_records",
    "Input records per committed batch",
    ["stage"],
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
)
BATCH_SECONDS = Histogram(
    "leadstream_stage_batch_seconds",
    "Time to handle a batch (decode, handler, encode)",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TRANSACTION_SECONDS = Histogram(
    "leadstream_stage_transaction_seconds",
    "Time to produce a batch's outputs and commit its transaction",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
END_TO_END_SECONDS = Histogram(
    "leadstream_stage_end_to_end_seconds",
    "Age of an input event when its outputs commit: now minus the event's own event_time "
    "(or its Kafka timestamp when it has none)",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
CONSUMER_LAG = Gauge(
    "leadstream_stage_consumer_lag",
    "Records between this consumer's position and the partition's high watermark",
    ["stage", "topic", "partition"],
)
LAST_LOOP = Gauge("leadstream_stage_last_loop_timestamp", "Unix time of the last loop", ["stage"])
