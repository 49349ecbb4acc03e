"""Plumbing of the batch / bison-sync integration tests: a fresh database with every
migration, topics and schemas under the test's prefix, event factories, Avro produce/read."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from leadstream.events import Serde, contact_id, register_schemas
from leadstream.settings import Settings
from leadstream.topics import TopicSettings, apply
from tests.support.kafka import produce

S = TypeVar("S", bound=Settings)


def drop_topics(settings: Settings) -> None:
    """Delete every topic under the test's prefix (the shared broker keeps every topic it is
    given; thousands of leftover test partitions exhausted its heap once)."""
    if not settings.topic_prefix:
        return
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    names = [t for t in admin.list_topics(timeout=30).topics if t.startswith(settings.topic_prefix)]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result(timeout=60)


def prepare_topics(settings: Settings, partitions: int = 3) -> None:
    """Every catalog topic under the prefix, and the schemas registered."""
    report = apply(TopicSettings.of(settings, topic_partitions=partitions))
    assert report.ok, report
    assert all(r.ok for r in register_schemas(settings))


def verified(email: str, *, job_id: str | None = "job-1", **fields: Any) -> dict[str, Any]:
    """A ContactVerified record (deliverable unless ``verdict`` says otherwise)."""
    email = email.lower()
    return {
        "event_id": str(uuid.uuid4()),
        "job_id": job_id,
        "source": "verify",
        "event_time": int(time.time() * 1000),
        "raw_event_id": str(uuid.uuid4()),
        "filtered_event_id": str(uuid.uuid4()),
        "contact_id": contact_id(email),
        "email_normalized": email,
        "domain": email.rpartition("@")[2],
        "role_account": False,
        "free_provider": False,
        "email": email,
        "first_name": "Ann",
        "last_name": "Lee",
        "verdict": "deliverable",
        **fields,
    }


def batch_contact(email: str, *, job_id: str | None = "job-1", **fields: Any) -> dict[str, Any]:
    email = email.lower()
    return {
        "contact_id": contact_id(email),
        "email": email,
        "first_name": "Ann",
        "last_name": "Lee",
        "verdict": "deliverable",
        "job_id": job_id,
        "verified_event_id": str(uuid.uuid4()),
        **fields,
    }


def batch_ready(campaign_id: str, contacts: Sequence[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    now = int(time.time() * 1000)
    batch = str(uuid.uuid4())
    return {
        "event_id": str(uuid.uuid4()),
        "job_id": None,
        "source": "batch",
        "event_time": now,
        "batch_id": batch,
        "campaign_id": campaign_id,
        "closed_reason": "size",
        "opened_at": now,
        "contacts": list(contacts),
        **kw,
    }


def publish(
    settings: Settings,
    serde: Serde,
    topic: str,
    values: Sequence[dict[str, Any]],
    key: Callable[[dict[str, Any]], str],
) -> None:
    physical = settings.topic(topic)
    produce(
        settings,
        physical,
        [
            (
                key(v).encode(),
                serde.serialize(v, physical),
                [("job_id", v["job_id"].encode())] if v.get("job_id") else None,
            )
            for v in values
        ],
    )


@dataclass(frozen=True)
class Message:
    key: str
    value: dict[str, Any]
    headers: dict[str, bytes]


def read(
    settings: Settings,
    serde: Serde,
    topic: str,
    *,
    expect: int,
    timeout: float = 30.0,
    settle: float = 1.0,
) -> list[Message]:
    """Every committed record of a topic: until ``expect`` are in (or ``timeout``), then
    ``settle`` seconds more so that extra ones would be seen too."""
    physical = settings.topic(topic)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([physical])
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    until: float | None = None
    try:
        while until is None or time.monotonic() < until:
            if until is None and (len(out) >= expect or time.monotonic() > deadline):
                until = time.monotonic() + settle
            for m in consumer.consume(500, 0.2):
                assert m.error() is None, m.error()
                out.append(
                    Message(
                        (m.key() or b"").decode(),
                        serde.deserialize(m.value() or b"", physical),
                        {k: v or b"" for k, v in m.headers() or []},
                    )
                )
    finally:
        consumer.close()
    return out
