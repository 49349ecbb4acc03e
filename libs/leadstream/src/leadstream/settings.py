"""Typed settings, read once from the environment (prefix ``LEADSTREAM_``).

Every service subclasses :class:`Settings` with its own fields; nothing connects at
import time and nothing reads ``os.environ`` elsewhere.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from leadstream.errors import ConfigError

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "leadstream", "password", "secret"})


class Settings(BaseSettings):
    """Connection settings shared by every LeadStream process."""

    model_config = SettingsConfigDict(
        env_prefix="LEADSTREAM_", env_file=".env", extra="ignore", frozen=True
    )

    env: Literal["dev", "test", "prod"] = "dev"
    kafka_bootstrap: str = "127.0.0.1:9092"
    schema_registry_url: str = "http://127.0.0.1:8081/apis/ccompat/v7"
    schema_registry_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Deadline of each registry request; a timed-out one is retried (3 times).",
    )
    database_url: str = "postgresql+psycopg://leadstream@127.0.0.1:5432/leadstream"
    database_password: SecretStr = SecretStr("leadstream")
    mongo_url: str = "mongodb://127.0.0.1:27017/"
    mongo_database: str = "leadstream"
    redis_url: str = "redis://127.0.0.1:6379/0"
    topic_prefix: str = ""
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Self:
        if self.env == "prod":
            weak = self.database_password.get_secret_value().lower() in PLACEHOLDER_SECRETS
            if weak:
                raise ConfigError(
                    "LEADSTREAM_DATABASE_PASSWORD is a placeholder; set a real secret in production"
                )
        return self

    def topic(self, name: str) -> str:
        """The physical topic name for a logical one (a prefix isolates tests and tenants)."""
        return f"{self.topic_prefix}{name}"

    def sqlalchemy_url(self) -> str:
        """The database URL with the password filled in."""
        from sqlalchemy.engine import make_url

        url = make_url(self.database_url)
        if url.password is None:
            url = url.set(password=self.database_password.get_secret_value())
        return url.render_as_string(hide_password=False)
