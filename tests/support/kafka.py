"""Small helpers over the real broker for tests: create topics, produce, read everything."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from leadstream.settings import Settings


def create_topics(settings: Settings, names: Iterable[str], partitions: int = 3) -> None:
    """Create physical topics (names already prefixed)."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    futures = admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    for future in futures.values():
        future.result(timeout=30)


def produce(
    settings: Settings,
    topic: str,
    items: Iterable[tuple[bytes | None, bytes | None, list[tuple[str, bytes]] | None]],
) -> int:
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 20, "acks": "all"}
    )
    n = 0
    for key, value, headers in items:
        while True:
            try:
                producer.produce(topic, key=key, value=value, headers=headers)
                break
            except BufferError:
                producer.poll(0.1)
        n += 1
    if producer.flush(60) != 0:
        raise RuntimeError("messages left unflushed")
    return n


def read_all(
    settings: Settings,
    topic: str,
    *,
    expect: int | None = None,
    timeout: float = 60.0,
    settle: float = 2.0,
) -> list[Any]:
    """Every committed message of ``topic``: reads until ``expect`` are in (or ``timeout``),
    then ``settle`` seconds more so that extra (duplicate) messages would be seen too."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    try:
        while True:
            now = time.monotonic()
            if settle_until is None and (
                (expect is not None and len(out) >= expect) or now > deadline
            ):
                settle_until = now + settle
            if settle_until is not None and now > settle_until:
                break
            for msg in consumer.consume(500, 0.3):
                if msg.error():
                    raise KafkaException(msg.error())
                out.append(msg)
    finally:
        consumer.close()
    return out


class JsonCodec:
    """A plain JSON codec, for runtime tests that are about the loop, not the wire format."""

    def deserialize(self, data: bytes, topic: str) -> dict[str, Any]:
        value = json.loads(data)
        if not isinstance(value, dict):
            raise ValueError(f"expected a JSON object on {topic}")
        return value

    def serialize(self, record: Mapping[str, Any], topic: str) -> bytes:
        return json.dumps(record, separators=(",", ":")).encode()
