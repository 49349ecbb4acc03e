"""Settings of the bison-sync service (environment prefix ``LEADSTREAM_``)."""

from __future__ import annotations

from pydantic import SecretStr

from leadstream.settings import Settings


class BisonSyncSettings(Settings):
    """Settings of the Email Bison sync stage (dry-run when no API key is set)."""

    consumer_group: str = "leadstream-bison-sync"
    metrics_port: int = 9104
    bison_base_url: str = ""
    bison_api_key: SecretStr = SecretStr("")
    bison_requests_per_minute: int = 3000

    @property
    def dry_run(self) -> bool:
        """True when no Email Bison credentials are configured."""
        return not (self.bison_base_url and self.bison_api_key.get_secret_value())
