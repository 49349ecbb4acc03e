"""Settings of the ingest service (environment prefix ``LEADSTREAM_``)."""

from __future__ import annotations

from leadstream.settings import Settings


class IngestSettings(Settings):
    """Settings of the ingest HTTP API."""

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    max_body_bytes: int = 50 * 1024 * 1024
    max_batch_contacts: int = 1000
    phone_region: str = "GB"
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
