"""Produce BisonEvent records to ``bison.events`` (the replies poll)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from confluent_kafka import Producer

from leadstream.errors import LeadStreamError
from leadstream.runtime import Codec
from leadstream.settings import Settings

TOPIC = "bison.events"


class PublishError(LeadStreamError):
    """Events the broker did not acknowledge (the next poll finds the replies again)."""


class EventPublisher:
    """An idempotent producer (acks=all); a send counts once the broker acknowledged it."""

    def __init__(self, settings: Settings, codec: Codec) -> None:
        self.topic = settings.topic(TOPIC)
        self.codec = codec
        self._producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
            }
        )

    def __call__(self, events: Sequence[dict[str, Any]]) -> None:
        errors: list[str] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        for ev in events:
            key = ev.get("email") or ev.get("workspace_id") or "unknown"
            self._producer.produce(
                self.topic,
                key=str(key).encode(),
                value=self.codec.serialize(ev, self.topic),
                on_delivery=delivered,
            )
        left = self._producer.flush(30)
        if left or errors:
            raise PublishError(f"bison.events: {left} unsent, errors: {errors[:3]}")

    def close(self) -> None:
        self._producer.flush(5)
