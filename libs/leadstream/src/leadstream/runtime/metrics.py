"""Prometheus metrics of every stage (one set per process, labelled by stage)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS_IN = Counter("leadstream_stage_records_in", "Records consumed", ["stage"])
RECORDS_OUT = Counter("leadstream_stage_records_out", "Records produced", ["stage", "topic"])
DEAD_LETTERED = Counter(
    "leadstream_stage_dead_lettered", "Records sent to the dead-letter topic", ["stage", "error"]
)
RETRIES = Counter("leadstream_stage_retries", "Batches put back for a later retry", ["stage"])
ABORTS = Counter("leadstream_stage_transaction_aborts", "Aborted transactions", ["stage"])
BATCH_SECONDS = Histogram(
    "leadstream_stage_batch_seconds",
    "Time to handle a batch (decode, handler, encode)",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TRANSACTION_SECONDS = Histogram(
    "leadstream_stage_transaction_seconds",
    "Time to produce a batch's outputs and commit its transaction",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
END_TO_END_SECONDS = Histogram(
    "leadstream_stage_end_to_end_seconds",
    "Age of a record (from its Kafka timestamp) when its outputs commit",
    ["stage"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
LAST_LOOP = Gauge("leadstream_stage_last_loop_timestamp", "Unix time of the last loop", ["stage"])
