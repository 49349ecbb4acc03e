"""Pipeline status from Kafka alone: per stage its consumer group, members, lag and rates.

Two snapshots ``interval_s`` apart give rates: records/s committed by each stage's group, and
records/s appended to each topic.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from leadstream.runtime.deadletter import dlq_topic
from leadstream.settings import Settings
from leadstream.topics import CATALOG, DLQ_STAGES, TopicSpec

RUNTIME_STAGES: tuple[str, ...] = ("filter", "verify", "batch", "bison-sync", "audit")


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


@dataclass
class StageStatus:
    stage: str
    group: str
    state: str
    members: int
    partitions: list[PartitionLag] = field(default_factory=list)
    dead_letters: int = 0
    rate_in: float | None = None

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)


@dataclass(frozen=True)
class TopicStatus:
    topic: str
    end_total: int
    rate: float | None


@dataclass
class PipelineStatus:
    stages: list[StageStatus]
    topics: list[TopicStatus]
    taken_at: float


def inputs_of(stage: str, catalog: Sequence[TopicSpec] = CATALOG) -> list[str]:
    """The logical topics a stage consumes, from the catalog."""
    return [t.name for t in catalog if stage in t.consumers]


class StatusReader:
    """Reads group offsets, members and topic end offsets with one admin client."""

    def __init__(self, settings: Settings, stages: Sequence[str] = RUNTIME_STAGES) -> None:
        self.settings = settings
        self.stages = list(stages)
        self.admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})

    def _partitions(self, topics: Sequence[str]) -> list[TopicPartition]:
        meta = self.admin.list_topics(timeout=10)
        out = []
        for name in topics:
            t = meta.topics.get(name)
            if t is not None and t.error is None:
                out += [TopicPartition(name, p) for p in sorted(t.partitions)]
        return out

    def _ends(self, parts: Sequence[TopicPartition]) -> dict[tuple[str, int], int]:
        if not parts:
            return {}
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        futures = self.admin.list_offsets({tp: latest for tp in parts})
        return {(tp.topic, tp.partition): f.result(10).offset for tp, f in futures.items()}

    def _committed(self, group: str, parts: list[TopicPartition]) -> dict[tuple[str, int], int]:
        if not parts:
            return {}
        req = [ConsumerGroupTopicPartitions(group, parts)]
        try:
            result = self.admin.list_consumer_group_offsets(req)[group].result(10)
        except KafkaException:
            return {}
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in result.topic_partitions or []
            if tp.offset >= 0
        }

    def _members(self, group: str) -> tuple[str, int]:
        try:
            desc = self.admin.describe_consumer_groups([group])[group].result(10)
        except KafkaException:
            return "unknown", 0
        return str(desc.state).rsplit(".", 1)[-1].lower(), len(desc.members)

    def snapshot(self) -> PipelineStatus:
        s = self.settings
        topic_names = [s.topic(t.name) for t in CATALOG]
        all_parts = self._partitions(topic_names)
        ends = self._ends(all_parts)
        stages = []
        for stage in self.stages:
            group = s.topic(f"leadstream-{stage}")
            inputs = {s.topic(t) for t in inputs_of(stage)}
            parts = [tp for tp in all_parts if tp.topic in inputs]
            committed = self._committed(group, parts)
            state, members = self._members(group)
            lags = [
                PartitionLag(
                    tp.topic,
                    tp.partition,
                    committed.get((tp.topic, tp.partition)),
                    ends[(tp.topic, tp.partition)],
                )
                for tp in parts
            ]
            dlq = s.topic(dlq_topic(stage)) if stage in DLQ_STAGES else None
            dead = sum(v for (t, _), v in ends.items() if t == dlq)
            stages.append(StageStatus(stage, group, state, members, lags, dead))
        totals: dict[str, int] = {}
        for (t, _), v in ends.items():
            totals[t] = totals.get(t, 0) + v
        topics = [TopicStatus(t, totals.get(t, 0), None) for t in topic_names if t in totals]
        return PipelineStatus(stages, topics, time.monotonic())


def with_rates(before: PipelineStatus, after: PipelineStatus) -> PipelineStatus:
    """``after`` with rates computed against ``before``."""
    dt = max(after.taken_at - before.taken_at, 1e-6)
    prev_stage = {st.stage: st for st in before.stages}
    for st in after.stages:
        old = prev_stage.get(st.stage)
        if old is not None:
            done_now = sum(p.committed or 0 for p in st.partitions)
            done_then = sum(p.committed or 0 for p in old.partitions)
            st.rate_in = max(0.0, (done_now - done_then) / dt)
    prev_topic = {t.topic: t.end_total for t in before.topics}
    after.topics = [
        TopicStatus(t.topic, t.end_total, max(0.0, (t.end_total - prev_topic.get(t.topic, 0)) / dt))
        for t in after.topics
    ]
    return after
