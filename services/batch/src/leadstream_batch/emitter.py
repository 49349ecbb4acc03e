"""Produce outputs in one Kafka transaction, outside the stage runtime's loop (the timer
path: batches closed by age, by a flush, or by releasing held contacts), and look back at
what an earlier emission committed (see :mod:`leadstream_batch.timer`)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from leadstream.errors import LeadStreamError
from leadstream.runtime import Codec, Output
from leadstream.settings import Settings

log = logging.getLogger(__name__)


class EmitError(LeadStreamError):
    """The outputs were not committed; the caller keeps them to emit again."""


class UndecidedError(EmitError):
    """A transaction on the topic is still open: what it holds is not known yet."""


class Emitter(Protocol):
    def emit(self, outputs: Sequence[Output]) -> None: ...

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Where each partition of the logical ``topic`` ends now."""
        ...

    def committed_keys(
        self, topic: str, since: Mapping[int, int], keys: Collection[str]
    ) -> set[str]:
        """Which of ``keys`` occur in committed records of ``topic`` from the offsets
        ``since`` on; raises :class:`UndecidedError` while a transaction there is open."""
        ...

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

    def end_offsets(self, topic: str) -> dict[int, int]:
        consumer = self._reader()
        try:
            physical = self.settings.topic(topic)
            metadata = consumer.list_topics(physical, timeout=10).topics[physical]
            if metadata.error is not None:
                raise EmitError(f"cannot read the partitions of {physical}: {metadata.error}")
            return {
                p: consumer.get_watermark_offsets(TopicPartition(physical, p), timeout=10)[1]
                for p in metadata.partitions
            }
        except KafkaException as exc:
            raise EmitError(f"cannot read the end offsets of {topic}: {exc}") from exc
        finally:
            consumer.close()

    def committed_keys(
        self,
        topic: str,
        since: Mapping[int, int],
        keys: Collection[str],
        *,
        timeout_s: float = 15.0,
    ) -> set[str]:
        """Read ``read_committed`` from ``since`` up to where each partition ends now. A
        read_committed consumer stops at the last stable offset, before the first open
        transaction: until it passes today's end, an open transaction may still commit
        records we would not see, so the answer waits (up to ``timeout_s``) or is refused."""
        wanted = set(keys)
        physical = self.settings.topic(topic)
        consumer = self._reader()
        try:
            targets = {
                p: consumer.get_watermark_offsets(TopicPartition(physical, p), timeout=10)[1]
                for p in since
            }
            todo = {p for p, start in since.items() if start < targets[p]}
            if not todo:
                return set()
            consumer.assign([TopicPartition(physical, p, since[p]) for p in todo])
            found: set[str] = set()
            deadline = time.monotonic() + timeout_s
            while todo:
                if time.monotonic() > deadline:
                    raise UndecidedError(
                        f"{physical}: partitions {sorted(todo)} hold an open transaction"
                    )
                msg = consumer.poll(0.2)
                if msg is not None:
                    err = msg.error()
                    if err is not None and err.code() != KafkaError._PARTITION_EOF:
                        raise EmitError(f"reading {physical}[{msg.partition()}]: {err}")
                    key = msg.key() if err is None else None
                    if key is not None and key.decode("utf-8", "replace") in wanted:
                        found.add(key.decode())
                # A partition is done once the read position (past control records and
                # aborted data) reaches where it ended when we started.
                positions = consumer.position([TopicPartition(physical, p) for p in todo])
                todo -= {tp.partition for tp in positions if tp.offset >= targets[tp.partition]}
            return found
        except KafkaException as exc:
            raise EmitError(f"cannot read {physical}: {exc}") from exc
        finally:
            consumer.close()

    def _reader(self) -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "group.id": f"{self.transactional_id}-check-{uuid.uuid4().hex[:8]}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            }
        )

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
