"""Settings of the verify service (environment prefix ``LEADSTREAM_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from leadstream.settings import Settings


class VerifySettings(Settings):
    """Settings of the verify stage."""

    consumer_group: str = "leadstream-verify"
    metrics_host: str = Field(default="127.0.0.1", description="Bind address of /metrics.")
    metrics_port: int = 9102
    database_pool_size: int = Field(default=2, ge=1)

    dns_nameservers: tuple[str, ...] = Field(
        default=(), description="host or host:port; empty = the system's resolv.conf."
    )
    dns_timeout_s: float = Field(default=2.0, gt=0, description="Per look-up attempt.")
    dns_attempts: int = Field(default=3, ge=1, description="Tries on timeout/SERVFAIL.")
    dns_backoff_s: float = Field(default=0.2, ge=0, description="First retry delay (doubles).")
    dns_concurrency: int = Field(default=200, ge=1, description="Look-ups in flight.")
    dns_min_ttl_s: int = Field(default=300, ge=0, description="Floor of a positive answer's TTL.")
    dns_max_ttl_s: int = Field(default=86_400, ge=1, description="Cap of a positive answer's TTL.")
    dns_negative_ttl_s: int = Field(default=900, ge=0, description="NXDOMAIN / no mail.")
    dns_unknown_ttl_s: int = Field(default=30, ge=0, description="Timeouts, in process only.")
    dns_outage_min_domains: int = Field(
        default=5, ge=1, description="All of at least this many look-ups failed → retry batch."
    )
    dns_cache_max_entries: int = Field(default=200_000, ge=1)
    dns_redis_cache: bool = Field(default=True, description="Share the MX cache in Redis.")
    dns_cache_namespace: str = Field(default="leadstream:mx:", description="Redis key prefix.")

    verifier: Literal["none", "reacher"] = Field(
        default="none", description="External verifier (off by default)."
    )
    verifier_url: str = "http://127.0.0.1:8080"
    verifier_path: str = "/v1/check_email"
    verifier_api_key: SecretStr | None = None
    verifier_auth_header: str = Field(
        default="Authorization",
        description="Reacher SaaS: Authorization; self-hosted: x-reacher-secret.",
    )
    verifier_timeout_s: float = Field(default=30.0, gt=0)
    verifier_rate_per_s: float = Field(default=5.0, gt=0)
    verifier_burst: int = Field(default=5, ge=1)
    verifier_concurrency: int = Field(default=8, ge=1)
    verifier_breaker_failures: int = Field(default=5, ge=1)
    verifier_breaker_reset_s: float = Field(default=30.0, gt=0)
    verifier_batch_budget_s: float = Field(
        default=60.0, gt=0, description="Past this, a batch's remaining checks are skipped."
    )
    verifier_cache_ttl_s: float = Field(default=86_400.0, ge=0)
