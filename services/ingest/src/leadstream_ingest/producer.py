"""The ingest producer: idempotent, ``acks=all``, polled by its own thread, and delivery
reports gathered per request so a 202 is sent only after the broker acknowledged every event.

:class:`Acks` counts the delivery reports of one group of messages (a request, an upload)
and resolves one asyncio future when the last of them is in: one lock and two integers per
message instead of one asyncio future each (an upload has a million).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from leadstream.events import Serde
from leadstream.settings import Settings
from leadstream_ingest.config import IngestSettings
from leadstream_ingest.errors import Unavailable

log = logging.getLogger(__name__)
Headers = list[tuple[str, str | bytes | None]]


class Acks:
    """Delivery reports of a group of messages; :meth:`wait` returns when all are in."""

    __slots__ = ("_done", "_error", "_failed", "_future", "_lock", "_loop", "_sealed", "_sent")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._future: asyncio.Future[None] = loop.create_future()
        self._lock = threading.Lock()
        self._sent = 0
        self._done = 0
        self._failed = 0
        self._error: KafkaError | None = None
        self._sealed = False

    @property
    def sent(self) -> int:
        return self._sent

    @property
    def failed(self) -> int:
        return self._failed

    def expect(self) -> None:
        """One more message was handed to the producer (call before ``produce``)."""
        with self._lock:
            self._sent += 1

    def unexpect(self) -> None:
        """The message counted by :meth:`expect` was not handed over after all."""
        with self._lock:
            self._sent -= 1
            finished = self._sealed and self._done == self._sent
        if finished:
            self._loop.call_soon_threadsafe(self._finish)

    def __call__(self, err: KafkaError | None, _msg: Message) -> None:
        """The delivery callback (runs on the poll thread)."""
        with self._lock:
            self._done += 1
            if err is not None:
                self._failed += 1
                if self._error is None:
                    self._error = err
            finished = self._sealed and self._done == self._sent
        if finished:
            self._loop.call_soon_threadsafe(self._finish)

    def seal(self) -> None:
        """No more messages will be added."""
        with self._lock:
            self._sealed = True
            finished = self._done == self._sent
        if finished:
            self._loop.call_soon_threadsafe(self._finish)

    def _finish(self) -> None:
        if not self._future.done():
            self._future.set_result(None)

    async def wait(self, timeout_s: float) -> None:
        """Wait for every report; :class:`Unavailable` if one failed or none came in time."""
        self.seal()
        try:
            await asyncio.wait_for(asyncio.shield(self._future), timeout_s)
        except TimeoutError:
            raise Unavailable(
                "the event broker did not acknowledge the events in time; retry",
                code="broker_timeout",
            ) from None
        if self._error is not None:
            log.warning("%d of %d deliveries failed: %s", self._failed, self._sent, self._error)
            raise Unavailable(
                f"the event broker refused {self._failed} of {self._sent} events; retry",
                code="broker_unavailable",
            )


class EventProducer:
    """Serializes events with the serde and produces them; one per process."""

    def __init__(self, settings: IngestSettings, serde: Serde) -> None:
        self.settings = settings
        self.serde = serde
        self.ack_timeout_s = settings.producer_message_timeout_ms / 1000 + 5
        self._producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": settings.producer_linger_ms,
                "compression.type": settings.producer_compression,
                "message.timeout.ms": settings.producer_message_timeout_ms,
                "queue.buffering.max.kbytes": settings.producer_queue_max_kbytes,
                "queue.buffering.max.messages": 500_000,
                "client.id": "leadstream-ingest",
            }
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="ingest-producer", daemon=True)
        self._thread.start()
        self.dropped = 0

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def topic(self, logical: str) -> str:
        return self.settings.topic(logical)

    def encode(self, logical_topic: str, value: Mapping[str, Any]) -> bytes:
        return self.serde.serialize(value, logical_topic)

    def produce(
        self,
        logical_topic: str,
        value: bytes,
        key: str | bytes | None,
        headers: Headers | None,
        acks: Acks,
        *,
        deadline_s: float | None = None,
    ) -> None:
        """Hand one encoded event to the producer, blocking while its queue is full.

        Blocking: call it from a worker thread (uploads, batches), not the event loop.
        """
        topic = self.settings.topic(logical_topic)
        acks.expect()
        give_up = time.monotonic() + (deadline_s if deadline_s is not None else self.ack_timeout_s)
        while True:
            try:
                self._producer.produce(topic, value, key, headers=headers, on_delivery=acks)
                return
            except BufferError:
                if time.monotonic() > give_up:
                    acks.unexpect()
                    raise Unavailable(
                        "the event broker is not keeping up; retry", code="broker_backlog"
                    ) from None
                time.sleep(0.005)  # the poll thread drains deliveries meanwhile
            except BaseException:
                acks.unexpect()
                raise

    def send_nowait(
        self, logical_topic: str, value: Mapping[str, Any], key: str | bytes | None
    ) -> bool:
        """Fire and forget (request logs): never blocks; False when it had to drop it."""
        try:
            data = self.encode(logical_topic, value)
            self._producer.produce(
                self.settings.topic(logical_topic), data, key, on_delivery=self._log_failure
            )
            return True
        except BufferError:
            self.dropped += 1
            return False
        except Exception:
            self.dropped += 1
            log.exception("could not produce to %s", logical_topic)
            return False

    @staticmethod
    def _log_failure(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            log.warning("fire-and-forget delivery to %s failed: %s", msg.topic(), err)

    def ping(self, timeout_s: float = 2.0) -> int:
        """Number of brokers in the cluster metadata (raises when unreachable)."""
        return len(self._producer.list_topics(timeout=timeout_s).brokers)

    def close(self, timeout_s: float = 10.0) -> None:
        remaining = self._producer.flush(timeout_s)
        if remaining:
            log.warning("%d events left unflushed at shutdown", remaining)
        self._stop.set()
        self._thread.join(timeout=5)


def new_producer(settings: Settings, serde: Serde) -> EventProducer:
    ingest = settings if isinstance(settings, IngestSettings) else IngestSettings.of(settings)
    return EventProducer(ingest, serde)
