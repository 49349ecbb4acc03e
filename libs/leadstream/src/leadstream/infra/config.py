"""Where the local stack lives and which ports it uses (all overridable by environment)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "leadstream"


class InfraSettings(BaseSettings):
    """Ports, versions and folders of the local development stack.

    Every server binds 127.0.0.1 only. Data, logs and pid files go under ``state_dir``
    (``.local/`` in the checkout, gitignored); downloads and builds go under ``cache_dir``.
    """

    model_config = SettingsConfigDict(env_prefix="LEADSTREAM_", extra="ignore", frozen=True)

    state_dir: Path = Path(".local")
    infra_dir: Path = Path("infra")
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    host: str = "127.0.0.1"

    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_version: str = "4.1.1"
    kafka_heap: str = "1g"
    registry_port: int = 8081
    registry_management_port: int = 9001
    registry_version: str = "3.3.3"
    postgres_port: int = 5432
    postgres_bin_dir: Path = Path("/usr/lib/postgresql/15/bin")
    postgres_user: str = "leadstream"
    postgres_password: str = "leadstream"  # noqa: S105 - loopback-only dev stack
    postgres_database: str = "leadstream"
    redis_port: int = 6379
    mongo_port: int = 27017
    ferretdb_version: str = "v1.24.2"

    def resolved(self) -> InfraSettings:
        """A copy whose folders are absolute (servers are started from other folders)."""
        return self.model_copy(
            update={
                "state_dir": self.state_dir.resolve(),
                "infra_dir": self.infra_dir.resolve(),
                "cache_dir": self.cache_dir.expanduser().resolve(),
            }
        )

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def kafka_libs(self) -> Path:
        return self.cache_dir / f"kafka-{self.kafka_version}" / "libs"

    @property
    def registry_home(self) -> Path:
        return self.cache_dir / f"apicurio-{self.registry_version}"

    @property
    def ferretdb_bin(self) -> Path:
        return self.cache_dir / f"ferretdb-{self.ferretdb_version}" / "ferretdb"
