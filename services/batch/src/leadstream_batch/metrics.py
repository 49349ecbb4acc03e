"""Prometheus metrics of the batch timer (the stage's own are ``leadstream_stage_*``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TICKS = Counter("leadstream_batch_timer_ticks", "Timer ticks, by outcome", ["outcome"])
TICK_SECONDS = Histogram(
    "leadstream_batch_timer_tick_seconds",
    "Time of one timer tick (age closes, hold releases, outbox emission)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CLOSED_BY_AGE = Counter("leadstream_batch_closed_by_age", "Batches closed by the timer (age)")
RELEASED = Counter("leadstream_batch_holds_released", "Held contacts placed into a batch")
EMITTED = Counter("leadstream_batch_outbox_emitted", "Batches emitted from the outbox")
LAST_TICK = Gauge(
    "leadstream_batch_timer_last_success_timestamp", "Unix time of the last successful tick"
)
RECOVERED = Counter(
    "leadstream_batch_outbox_recovered",
    "Outbox batches found already emitted after a restart (marked, not emitted again)",
)
