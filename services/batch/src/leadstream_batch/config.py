"""Settings of the batch service (environment prefix ``LEADSTREAM_``)."""

from __future__ import annotations

from leadstream.settings import Settings


class BatchSettings(Settings):
    """Settings of the batch stage."""

    consumer_group: str = "leadstream-batch"
    metrics_port: int = 9103
    batch_max_size: int = 500
    batch_max_age_s: float = 300.0
