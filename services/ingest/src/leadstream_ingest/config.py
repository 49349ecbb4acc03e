"""Settings of the ingest service (environment prefix ``LEADSTREAM_``)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator

from leadstream.errors import ConfigError
from leadstream.events import EventSettings
from leadstream.settings import PLACEHOLDER_SECRETS, Settings

MiB = 1024 * 1024


class IngestSettings(EventSettings):
    """Settings of the ingest HTTP API."""

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's built-in OpenTelemetry spans/metrics/logs. Off by default: the "
        "service has its own Prometheus metrics, and with no OpenTelemetry provider configured "
        "FastAPI still looks the providers up on every request (~10% of a registration's CPU).",
    )
    max_body_bytes: int = Field(
        default=5 * MiB, ge=1024, description="Limit of a JSON request body (413 beyond)."
    )
    max_batch_contacts: int = Field(default=1000, ge=1, le=1000)
    body_read_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="A request body read may wait this long for the client's next bytes (408).",
    )
    body_min_rate_bytes_s: float = Field(
        default=1024.0,
        ge=0,
        description="After body_read_timeout_s, a body must arrive at least this fast (0 = off).",
    )
    phone_region: str = "GB"
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = Field(
        default=(), description="Peers whose X-Forwarded-For is believed (the TLS proxy)."
    )

    # CSV uploads
    max_upload_bytes: int = Field(default=1024 * MiB, ge=1024, description="CSV upload limit.")
    max_upload_rows: int = Field(default=2_000_000, ge=1, description="Data rows per upload.")
    max_field_chars: int = Field(default=1000, ge=16, description="Longest CSV field accepted.")
    max_csv_columns: int = Field(default=200, ge=1)
    upload_errors_reported: int = Field(
        default=100, ge=0, description="Row errors returned (with line numbers) per upload."
    )

    # Email Bison webhooks
    bison_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Token in the webhook URL /v1/webhooks/bison/{token}; unset = disabled.",
    )
    webhook_max_body_bytes: int = Field(default=1 * MiB, ge=1024)
    webhook_receipts_days: int = Field(default=14, ge=1, description="Dedupe window.")
    webhook_bad_token_limit: int = Field(
        default=10,
        ge=1,
        description="Wrong webhook tokens a client address may send per period; then 429.",
    )
    webhook_bad_token_period_s: float = Field(default=60.0, gt=0)

    # Idempotency keys
    idempotency_ttl_hours: int = Field(default=24, ge=1)
    api_key_cache_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="Seconds a looked-up API key is kept in the process (0: look up every "
        "request). A revoked key stops working within this time.",
    )

    # Kafka producer
    producer_message_timeout_ms: int = Field(
        default=30_000, ge=1000, description="A 202 waits at most this for the broker's ack."
    )
    producer_queue_max_kbytes: int = Field(
        default=32 * 1024, ge=1024, description="librdkafka's local queue (bounds memory)."
    )
    producer_linger_ms: int = Field(default=5, ge=0)
    producer_compression: str = Field(default="lz4")

    # Job progress (SSE)
    job_events_interval_s: float = Field(default=1.0, gt=0, description="SSE poll period.")
    job_events_max_s: float = Field(
        default=3600.0, gt=0, description="An SSE stream ends after this; clients reconnect."
    )

    # The status page (GET /ui, data from GET /v1/status; docs/api.md "Status page")
    status_public: bool = Field(
        default=False,
        description="GET /v1/status answers without an API key (counts only: no job names, "
        "no errors); the page at /ui is public either way and holds no data itself.",
    )

    # Landing-page registrations (POST /v1/registrations, docs/api.md "Registrations").
    # CORS origins and trusted proxies are the shared `cors_origins` / `trusted_proxies`
    # (registrations read `trusted_proxies` entries as addresses or CIDR networks).
    registration_region: str | None = Field(
        default=None, description="Region phones are validated for; unset = phone_region."
    )
    registration_phone_pattern: str | None = Field(
        default=None,
        description=r"Regex the phone dialled nationally (digits only) must match, e.g. ^0\d{10}$.",
    )
    registration_rate_limit: int = Field(
        default=10, ge=1, description="Registrations per client IP per period (sustained)."
    )
    registration_rate_period_s: float = Field(default=60.0, gt=0)
    registration_rate_burst: int = Field(
        default=5, ge=1, description="Registrations an idle client IP may make back to back."
    )
    registration_rate_fail_open: bool = Field(
        default=True, description="Redis unreachable: accept (True) or answer 503 (False)."
    )
    registration_rate_timeout_s: float = Field(
        default=0.25, gt=0, description="A Redis slower than this counts as unreachable."
    )
    registration_ipv6_prefix: int = Field(
        default=64, ge=1, le=128, description="IPv6 clients share one limit per network."
    )
    registration_pending_ttl_s: int = Field(
        default=7 * 86_400, ge=60, description="How long an accepted id polls as pending."
    )
    registration_fast_path: bool = Field(
        default=True,
        description="Serve POST /v1/registrations (and its CORS preflight) by the raw-ASGI "
        "fast path in front of FastAPI (same answers, events and metrics; "
        "leadstream_ingest.fast_registrations). False: through FastAPI and its middleware.",
    )
    security_hsts_max_age_s: int = Field(default=31_536_000, ge=0)
    registration_writer_metrics_host: str = "127.0.0.1"
    registration_writer_metrics_port: int = Field(default=9108, ge=0)
    registration_writer_pool_size: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _refuse_placeholder_webhook_secret(self) -> Self:
        secret = self.bison_webhook_secret
        if secret is None:
            return self
        value = secret.get_secret_value()
        if len(value) < 16 and (self.env == "prod" or value.lower() in PLACEHOLDER_SECRETS):
            raise ConfigError(
                "LEADSTREAM_BISON_WEBHOOK_SECRET must be at least 16 random characters"
            )
        return self

    @classmethod
    def of(cls, settings: Settings, **overrides: object) -> Self:
        """These settings built from a plain :class:`Settings` (fields it lacks from the env)."""
        values: dict[str, object] = dict(settings)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
