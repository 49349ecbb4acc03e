"""Settings of the filter service (environment prefix ``LEADSTREAM_``)."""

from __future__ import annotations

from leadstream.settings import Settings


class FilterSettings(Settings):
    """Settings of the filter stage."""

    consumer_group: str = "leadstream-filter"
    metrics_port: int = 9101
    default_phone_region: str = "GB"
    reject_role_accounts: bool = False
