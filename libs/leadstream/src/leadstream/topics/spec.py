"""A topic declaration and the plan it turns into for given settings.

A :class:`TopicSpec` holds what does not depend on the environment (name, what it carries,
key, producers, consumers, retention class); :meth:`TopicSpec.plan` adds what does (prefix,
partitions, replication, ``min.insync.replicas``) and yields the :class:`TopicPlan` that
:func:`leadstream.topics.apply` makes true on the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from leadstream.topics.settings import TopicSettings

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


class Kind(StrEnum):
    """What a topic is for; decides its partitions and retention class."""

    STREAM = "stream"  # a pipeline stage's output
    REPLAY = "replay"  # a replay source: long retention
    STATE = "state"  # compacted, latest value per key
    AUDIT = "audit"  # short-lived on Kafka, kept in MongoDB
    DLQ = "dlq"  # dead letters: original bytes, no schema


STREAM_RETENTION_MS = 14 * DAY_MS
AUDIT_RETENTION_MS = 3 * DAY_MS
DLQ_RETENTION_MS = 30 * DAY_MS
BATCH_MAX_MESSAGE_BYTES = 8 * 1024 * 1024

COMPACTION = MappingProxyType(
    {
        "cleanup.policy": "compact",
        # The active segment is never compacted: roll hourly so old states go within the day.
        "segment.ms": str(HOUR_MS),
        "min.cleanable.dirty.ratio": "0.1",
        "max.compaction.lag.ms": str(DAY_MS),
        # Tombstones (deleted jobs) stay a day, so a lagging reader still sees the delete.
        "delete.retention.ms": str(DAY_MS),
    }
)


@dataclass(frozen=True, slots=True)
class TopicPlan:
    """A topic as it should exist on the cluster."""

    name: str  # physical (prefixed) name
    logical: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic of the catalog."""

    name: str
    kind: Kind
    value_schema: str | None  # Avro record name in schemas/, None = raw bytes
    key: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    description: str
    config: Mapping[str, str] = field(default_factory=dict)

    @property
    def subject(self) -> str | None:
        """The registry value subject of the logical topic (TopicNameStrategy)."""
        return f"{self.name}-value" if self.value_schema else None

    def plan(self, settings: TopicSettings) -> TopicPlan:
        """The physical topic for these settings."""
        partitions = (
            settings.topic_dlq_partitions if self.kind is Kind.DLQ else settings.topic_partitions
        )
        config: dict[str, str] = {"min.insync.replicas": str(settings.topic_min_insync_replicas)}
        if self.kind is Kind.STATE:
            config.update(COMPACTION)
        else:
            config["cleanup.policy"] = "delete"
            config["retention.ms"] = str(_retention_ms(self.kind, settings))
        config.update(self.config)
        return TopicPlan(
            name=settings.topic(self.name),
            logical=self.name,
            partitions=partitions,
            replication_factor=settings.topic_replication_factor,
            config=MappingProxyType(config),
        )


def _retention_ms(kind: Kind, settings: TopicSettings) -> int:
    if kind is Kind.REPLAY:
        return settings.topic_replay_retention_days * DAY_MS
    if kind is Kind.AUDIT:
        return AUDIT_RETENTION_MS
    if kind is Kind.DLQ:
        return DLQ_RETENTION_MS
    return STREAM_RETENTION_MS
