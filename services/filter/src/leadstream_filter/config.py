"""Settings of the filter service (environment prefix ``LEADSTREAM_``).

Lists are JSON arrays in the environment, e.g.
``LEADSTREAM_BLOCKED_TLDS='["zip", "mov"]'``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from leadstream.settings import Settings
from leadstream_filter.lists import FREE_PROVIDERS, ROLE_ACCOUNTS
from leadstream_filter.policy import Policy


class FilterSettings(Settings):
    """Settings of the filter stage."""

    consumer_group: str = "leadstream-filter"
    metrics_host: str = Field(default="127.0.0.1", description="Bind address of /metrics.")
    metrics_port: int = 9101
    default_phone_region: str = Field(
        default="GB", description="Region for phone numbers without a country code."
    )
    phone_validation: Literal["valid", "possible"] = Field(
        default="valid",
        description="valid: the number matches its country's numbering plan; possible: only "
        "its length (cheaper).",
    )
    reject_role_accounts: bool = Field(
        default=False, description="Reject role accounts (info@, sales@...) instead of flagging."
    )
    reject_free_providers: bool = Field(
        default=False, description="Reject free mailbox providers instead of flagging."
    )
    role_accounts: frozenset[str] = Field(
        default=ROLE_ACCOUNTS, description="Local parts that are role accounts."
    )
    free_providers: frozenset[str] = Field(
        default=FREE_PROVIDERS, description="Domains of free mailbox providers."
    )
    blocked_domains: frozenset[str] = Field(
        default=frozenset(), description="Domains (and their subdomains) always rejected."
    )
    blocked_tlds: frozenset[str] = Field(
        default=frozenset(), description="Top-level domains always rejected (no dot)."
    )
    allow_smtputf8: bool = Field(
        default=True, description="Accept internationalized (non-ASCII) local parts."
    )
    suppression_refresh_s: float = Field(
        default=2.0,
        ge=0,
        description="Poll the suppression list at most this often (0 = per batch).",
    )
    database_pool_size: int = Field(default=2, ge=1)

    def policy(self) -> Policy:
        """The filter's rules from these settings."""
        return Policy.of(
            role_accounts=self.role_accounts,
            free_providers=self.free_providers,
            reject_role_accounts=self.reject_role_accounts,
            reject_free_providers=self.reject_free_providers,
            blocked_domains=self.blocked_domains,
            blocked_tlds=self.blocked_tlds,
        )
