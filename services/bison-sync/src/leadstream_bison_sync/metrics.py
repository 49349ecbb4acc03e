"""Prometheus metrics of the bison-sync scheduler (the stage's own are ``leadstream_stage_*``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOB_RUNS = Counter(
    "leadstream_bison_scheduler_runs",
    "Scheduled job runs, by job and outcome (ok, partial, error)",
    ["job", "outcome"],
)
JOB_SECONDS = Histogram(
    "leadstream_bison_scheduler_run_seconds",
    "Time of one scheduled job run",
    ["job"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
JOB_LAST_SUCCESS = Gauge(
    "leadstream_bison_scheduler_last_success_timestamp",
    "Unix time a job last finished ok",
    ["job"],
)
LOCK_HELD = Gauge(
    "leadstream_bison_scheduler_lock_held", "1 while this instance holds the scheduler lock"
)
