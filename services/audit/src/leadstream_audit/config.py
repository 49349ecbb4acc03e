"""Settings of the audit service (environment prefix ``LEADSTREAM_``)."""

from __future__ import annotations

from leadstream.settings import Settings


class AuditSettings(Settings):
    """Settings of the audit sink (Kafka to MongoDB)."""

    consumer_group: str = "leadstream-audit"
    metrics_port: int = 9106
    bulk_size: int = 500
