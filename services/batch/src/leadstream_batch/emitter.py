"""Produce outputs in one Kafka transaction, outside the stage runtime's loop (the timer
path: batches closed by age, by a flush, or by releasing held contacts)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from confluent_kafka import KafkaException, Producer

from leadstream.errors import LeadStreamError
from leadstream.runtime import Codec, Output
from leadstream.settings import Settings

log = logging.getLogger(__name__)


class EmitError(LeadStreamError):
    """The outputs were not committed; the caller keeps them to emit again."""


class Emitter(Protocol):
    def emit(self, outputs: Sequence[Output]) -> None: ...

    def close(self) -> None: ...


class KafkaEmitter:
    """A transactional producer of its own (id ``<group>-<instance>-timer``), so it never
    fences the runner's producer and a restarted instance fences its own predecessor."""

    def __init__(self, settings: Settings, codec: Codec, transactional_id: str) -> None:
        self.settings = settings
        self.codec = codec
        self.transactional_id = transactional_id
        self._producer: Producer | None = None

    def _ready(self) -> Producer:
        if self._producer is None:
            producer = Producer(
                {
                    "bootstrap.servers": self.settings.kafka_bootstrap,
                    "transactional.id": self.transactional_id,
                    "transaction.timeout.ms": 10_000,
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                    "compression.type": "lz4",
                }
            )
            producer.init_transactions(30)
            self._producer = producer
        return self._producer

    def emit(self, outputs: Sequence[Output]) -> None:
        if not outputs:
            return
        try:
            producer = self._ready()
            producer.begin_transaction()
            for o in outputs:
                topic = self.settings.topic(o.topic)
                value = None if o.value is None else self.codec.serialize(o.value, topic)
                key = o.key.encode() if isinstance(o.key, str) else o.key
                headers: list[tuple[str, str | bytes | None]] = [
                    (k, v.encode() if isinstance(v, str) else v) for k, v in o.headers.items()
                ]
                while True:
                    try:
                        producer.produce(topic, value=value, key=key, headers=headers)
                        break
                    except BufferError:
                        producer.poll(0.05)
            producer.commit_transaction(30)
        except KafkaException as exc:
            self._discard()
            raise EmitError(f"timer emission failed: {exc}") from exc

    def _discard(self) -> None:
        """Abort what can be aborted; the next emission starts a fresh producer (same id),
        which fences and aborts whatever this one left open."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            producer.abort_transaction(5)
        except KafkaException as exc:
            log.debug("abort after a failed emission failed too: %s", exc)

    def close(self) -> None:
        if self._producer is not None:
            try:
                self._producer.flush(5)
            except KafkaException as exc:
                log.warning("timer producer flush on close failed: %s", exc)
            self._producer = None
