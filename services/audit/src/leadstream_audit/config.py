"""Settings of the audit service (environment prefix ``LEADSTREAM_``)."""

from __future__ import annotations

from pydantic import Field

from leadstream.events import EventSettings


class AuditSettings(EventSettings):
    """Settings of the audit sink (Kafka to MongoDB)."""

    consumer_group: str = "leadstream-audit"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9106
    bulk_size: int = Field(default=500, ge=1, description="Records per batch (and bulk insert).")
    mongo_timeout_ms: int = Field(
        default=5000, ge=100, description="Server selection / socket timeout of MongoDB calls."
    )
    request_logs_retention_days: int = Field(default=90, ge=1)
    audit_events_retention_days: int = Field(default=400, ge=1)
    purge_interval_s: float = Field(
        default=3600.0, gt=0, description="Period of the retention delete (FerretDB has no TTL)."
    )
