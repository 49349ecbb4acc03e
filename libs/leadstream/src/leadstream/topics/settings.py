"""Settings of the topic catalog: partitions, replication and the replay retention."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from leadstream.errors import ConfigError
from leadstream.settings import Settings


class TopicSettings(Settings):
    """:class:`Settings` plus what sizing the topics needs (env ``LEADSTREAM_TOPIC_*``)."""

    topic_partitions: int = Field(default=6, ge=1, description="Partitions of a pipeline topic.")
    topic_dlq_partitions: int = Field(default=1, ge=1, description="Partitions of a DLQ.")
    topic_replication_factor: int = Field(default=1, ge=1, description="1 locally, 3 in prod.")
    topic_min_insync_replicas: int = Field(default=1, ge=1, description="1 locally, 2 in prod.")
    topic_replay_retention_days: int = Field(
        default=365, ge=1, description="Retention of the replay sources contacts.raw, jobs.events."
    )

    @model_validator(mode="after")
    def _isr_fits_replication(self) -> Self:
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            raise ConfigError(
                "LEADSTREAM_TOPIC_MIN_INSYNC_REPLICAS "
                f"({self.topic_min_insync_replicas}) exceeds LEADSTREAM_TOPIC_REPLICATION_FACTOR "
                f"({self.topic_replication_factor}): every acks=all write would fail"
            )
        return self

    @classmethod
    def of(cls, settings: Settings, **overrides: object) -> Self:
        """These settings built from a plain :class:`Settings` (fields it lacks from the env)."""
        values: dict[str, object] = dict(settings)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
