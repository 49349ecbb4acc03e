"""Dead-letter topics: what is in them, and redriving them to their source after a fix.

A redrive re-publishes each dead letter's original key, value and headers to the topic named by
its ``dlq.source.topic`` header, adding ``dlq.redrive.count`` (one more than before). Progress is
the consumer group ``leadstream-dlq-redrive-<stage>``: its offsets and the re-published records
are committed in one Kafka transaction, so a redrive that crashes or is run twice never
re-publishes a record twice. Everything after the group's offset is "pending".
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from leadstream.runtime import deadletter as dl
from leadstream.runtime.records import header_list
from leadstream.settings import Settings


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic, with its headers decoded."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> str | None:
        for k, v in reversed(self.headers):
            if k == name:
                return v.decode("utf-8", "replace")
        return None

    @property
    def redrive_count(self) -> int:
        raw = self.header(dl.REDRIVE_COUNT)
        return int(raw) if raw and raw.isdigit() else 0


@dataclass
class DlqSummary:
    stage: str
    topic: str
    pending: int
    by_error: dict[str, int] = field(default_factory=dict)
    oldest_ms: int | None = None


def _group(settings: Settings, stage: str) -> str:
    return settings.topic(f"leadstream-dlq-redrive-{stage}")


def _consumer(settings: Settings, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )


def _assign_pending(consumer: Consumer, topic: str) -> dict[int, int]:
    """Assign every partition at the group's committed offset; return the end offsets."""
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        raise KafkaException(meta.error if meta else f"unknown topic {topic}")
    parts = [TopicPartition(topic, p) for p in meta.partitions]
    committed = consumer.committed(parts, timeout=10)
    ends: dict[int, int] = {}
    start: list[TopicPartition] = []
    for tp in committed:
        _, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
        ends[tp.partition] = high
        start.append(
            TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
        )
    consumer.assign(start)
    return ends


def _read_pending(
    settings: Settings, stage: str, limit: int | None, on_record: Callable[[DeadLetter], None]
) -> Consumer:
    """Feed pending dead letters (in partition order) to ``on_record``; returns the consumer,
    positioned after the last record fed, for the caller to commit or close."""
    topic = settings.topic(dl.dlq_topic(stage))
    consumer = _consumer(settings, _group(settings, stage))
    ends = _assign_pending(consumer, topic)
    seen = 0
    done = {p for p, end in ends.items() if end == 0}
    deadline = time.monotonic() + 30
    while len(done) < len(ends) and (limit is None or seen < limit):
        msgs = consumer.consume(500, 0.5)
        if not msgs:
            # Transaction markers occupy offsets: a partition is done when its position
            # reaches the end offset taken at the start.
            for tp in consumer.position([TopicPartition(topic, p) for p in ends]):
                if tp.offset >= ends[tp.partition]:
                    done.add(tp.partition)
            if time.monotonic() > deadline:
                break
            continue
        for m in msgs:
            if m.error():
                raise KafkaException(m.error())
            part, off = m.partition() or 0, m.offset() or 0
            if off >= ends[part]:
                done.add(part)
                continue
            headers = header_list(m.headers())
            key, value = m.key(), m.value()
            on_record(
                DeadLetter(
                    part,
                    off,
                    key.encode() if isinstance(key, str) else key,
                    value.encode() if isinstance(value, str) else value,
                    headers,
                )
            )
            seen += 1
            if off + 1 >= ends[part]:
                done.add(part)
            if limit is not None and seen >= limit:
                break
    return consumer


def pending(settings: Settings, stage: str, limit: int | None = None) -> list[DeadLetter]:
    """Dead letters not redriven yet (oldest first per partition)."""
    out: list[DeadLetter] = []
    _read_pending(settings, stage, limit, out.append).close()
    return out


def summarize(settings: Settings, stage: str) -> DlqSummary:
    records = pending(settings, stage)
    summary = DlqSummary(stage, settings.topic(dl.dlq_topic(stage)), len(records))
    for r in records:
        cls = r.header(dl.ERROR_CLASS) or "?"
        summary.by_error[cls] = summary.by_error.get(cls, 0) + 1
        t = r.header(dl.TIME)
        if t and t.isdigit() and (summary.oldest_ms is None or int(t) < summary.oldest_ms):
            summary.oldest_ms = int(t)
    return summary


def redrive(
    settings: Settings, stage: str, *, dry_run: bool = False, limit: int | None = None
) -> list[DeadLetter]:
    """Re-publish pending dead letters to their source topics, exactly once; returns them."""
    if dry_run:
        return pending(settings, stage, limit)
    group = _group(settings, stage)
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "transactional.id": f"{group}-{uuid.uuid4().hex[:8]}",
            "enable.idempotence": True,
            "acks": "all",
        }
    )
    producer.init_transactions(30)
    moved: list[DeadLetter] = []
    producer.begin_transaction()

    def republish(record: DeadLetter) -> None:
        source = record.header(dl.SOURCE_TOPIC)
        if not source:
            raise ValueError(f"dead letter at offset {record.offset} names no source topic")
        headers: list[tuple[str, str | bytes | None]] = [
            (k, v) for k, v in record.headers if not k.startswith(dl.DLQ_PREFIX)
        ]
        headers.append((dl.REDRIVE_COUNT, str(record.redrive_count + 1).encode()))
        producer.produce(source, key=record.key, value=record.value, headers=headers)
        moved.append(record)

    consumer = _read_pending(settings, stage, limit, republish)
    try:
        if moved:
            offsets: dict[int, int] = {}
            for r in moved:
                offsets[r.partition] = max(offsets.get(r.partition, 0), r.offset + 1)
            topic = settings.topic(dl.dlq_topic(stage))
            producer.send_offsets_to_transaction(
                [TopicPartition(topic, p, o) for p, o in offsets.items()],
                consumer.consumer_group_metadata(),
                30,
            )
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)
    except BaseException:
        producer.abort_transaction(30)
        raise
    finally:
        consumer.close()
    return moved
