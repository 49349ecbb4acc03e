"""Prometheus metrics of the audit housekeeping (the stage's own are ``leadstream_stage_*``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PURGED = Counter(
    "leadstream_audit_purged",
    "Documents deleted past their retention, by collection",
    ["collection"],
)
PURGE_RUNS = Counter("leadstream_audit_purge_runs", "Retention deletes, by outcome", ["outcome"])
LAST_PURGE = Gauge(
    "leadstream_audit_last_purge_timestamp", "Unix time of the last successful retention delete"
)
