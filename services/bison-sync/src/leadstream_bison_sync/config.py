"""Settings of the bison-sync service (environment prefix ``LEADSTREAM_``)."""

from __future__ import annotations

import hashlib
from typing import Self

from pydantic import Field, SecretStr, model_validator

from leadstream.errors import ConfigError
from leadstream.settings import Settings


class BisonSyncSettings(Settings):
    """Settings of the Email Bison sync stage.

    Credentials: ``bison_base_url`` (the instance URL) and ``bison_api_key``
    (``<n>|<secret>``). Without them the service runs in **dry-run** mode: it records in
    PostgreSQL (``bison_dry_run_requests``) what it would have sent and still emits
    ``batches.synced`` (``dry_run: true``). ``bison_dry_run`` makes the choice explicit:
    ``true`` forces a dry run even with credentials; ``false`` refuses to start without
    them; unset = dry run exactly when credentials are missing (refused in ``prod``).

    Stage: ``bison_stage_batch_size`` BatchReady records per handler call (each is up to 500
    leads: a few seconds of rate-limited calls), ``bison_upload_concurrency`` of them uploaded
    at once (so that one batch's bookkeeping does not leave the rate budget unused), and
    ``bison_stage_poll_timeout_s`` — short, so that a partly filled poll waits little.

    Rate: ``bison_requests_per_minute`` is shared by every instance through one Redis token
    bucket (``bison_burst`` requests may go at once). Set it a little under the instance's
    real limit (3,000/min is the figure in circulation; the unit of counting is unknown).
    """

    consumer_group: str = "leadstream-bison-sync"
    metrics_host: str = Field(default="127.0.0.1", description="Bind address of /metrics.")
    metrics_port: int = 9104
    bison_base_url: str = ""
    bison_api_key: SecretStr = SecretStr("")
    bison_dry_run: bool | None = None
    bison_requests_per_minute: float = 3000
    bison_burst: float = 5
    bison_rate_key: str | None = None
    bison_timeout_s: float = 30.0
    bison_max_attempts: int = 5
    bison_retry_base_s: float = 0.5
    bison_retry_cap_s: float = 20.0
    bison_upsert_chunk: int = 500
    bison_attach_chunk: int = 500
    bison_allow_parallel_sending: bool = False
    bison_stage_batch_size: int = 20
    bison_upload_concurrency: int = 2
    bison_stage_poll_timeout_s: float = 0.1
    bison_scheduler_enabled: bool = True
    bison_scheduler_tick_s: float = 5.0
    bison_campaign_sync_interval_s: float = 900.0
    bison_replies_poll_interval_s: float = 300.0
    bison_replies_poll_max_pages: int = 10
    bison_stats_days: int = 30
    bison_lock_ttl_s: float = 120.0

    @model_validator(mode="after")
    def _check(self) -> Self:
        creds = self.has_credentials
        if self.bison_dry_run is False and not creds:
            raise ConfigError(
                "LEADSTREAM_BISON_DRY_RUN=false but LEADSTREAM_BISON_BASE_URL / "
                "LEADSTREAM_BISON_API_KEY are not set"
            )
        if self.env == "prod" and self.bison_dry_run is None and not creds:
            raise ConfigError(
                "no Email Bison credentials: set LEADSTREAM_BISON_BASE_URL and "
                "LEADSTREAM_BISON_API_KEY, or LEADSTREAM_BISON_DRY_RUN=true to run without"
            )
        for name in ("bison_upsert_chunk", "bison_attach_chunk"):
            if not 1 <= getattr(self, name) <= 500:
                raise ConfigError(f"LEADSTREAM_{name.upper()} must be 1..500")
        if self.bison_requests_per_minute <= 0 or self.bison_burst < 1:
            raise ConfigError("LEADSTREAM_BISON_REQUESTS_PER_MINUTE > 0 and _BURST >= 1")
        return self

    @property
    def has_credentials(self) -> bool:
        return bool(self.bison_base_url and self.bison_api_key.get_secret_value())

    @property
    def dry_run(self) -> bool:
        """True when the service only records what it would send."""
        if self.bison_dry_run is not None:
            return self.bison_dry_run
        return not self.has_credentials

    @property
    def rate_key(self) -> str:
        """The Redis key of the shared bucket: one per Email Bison instance and API key id
        (never the secret), so every instance using the same key shares one budget."""
        if self.bison_rate_key:
            return self.bison_rate_key
        key_id = self.bison_api_key.get_secret_value().split("|", 1)[0]
        digest = hashlib.sha256(f"{self.bison_base_url}|{key_id}".encode()).hexdigest()[:16]
        return f"leadstream:bison:bucket:{digest}"
