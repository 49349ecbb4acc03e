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
import weakref
from collections import deque
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


class _AckDeadlines:
    """The deadlines of one event loop's :class:`OneAck` waits, in a FIFO (they are added
    with the same timeout, so in order); one task fails the expired ones with TimeoutError."""

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AckDeadlines] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.queue: deque[tuple[float, asyncio.Future[KafkaError | None]]] = deque()
        self.task = loop.create_task(self._expire())

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _AckDeadlines:
        current = cls._by_loop.get(loop)
        if current is None or current.task.done():
            current = cls._by_loop[loop] = cls(loop)
        return current

    def add(self, deadline: float, future: asyncio.Future[KafkaError | None]) -> None:
        self.queue.append((deadline, future))

    async def _expire(self, every_s: float = 0.5) -> None:
        queue = self.queue
        while True:
            await asyncio.sleep(every_s)
            now = time.monotonic()
            while queue and (queue[0][1].done() or queue[0][0] <= now):
                _, future = queue.popleft()
                if not future.done():
                    future.set_exception(TimeoutError())


class _AckInbox:
    """Delivery reports of :class:`OneAck` handed from the poll thread to one event loop:
    the first report of a burst wakes the loop (``call_soon_threadsafe``, a write to its
    wake-up pipe), the others of the same ``poll`` only join the queue, so one wake-up and
    one callback resolve them all instead of one each. The loop is held weakly (an inbox
    never keeps a finished loop alive)."""

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AckInbox] = (
        weakref.WeakKeyDictionary()
    )
    _last: _AckInbox | None = None

    __slots__ = ("__weakref__", "_loop", "_queue", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)
        self._queue: deque[tuple[asyncio.Future[KafkaError | None], KafkaError | None]] = deque()
        self._scheduled = False

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _AckInbox:
        last = cls._last
        if last is not None and last._loop() is loop:
            return last
        inbox = cls._by_loop.get(loop)
        if inbox is None:
            inbox = cls._by_loop[loop] = cls(loop)
        cls._last = inbox
        return inbox

    def put(self, future: asyncio.Future[KafkaError | None], err: KafkaError | None) -> None:
        """A report (on the poll thread). The queue is appended to before the flag is read,
        and the loop clears the flag before it empties the queue: a report is never left
        behind without a wake-up to come."""
        self._queue.append((future, err))
        if not self._scheduled:
            loop = self._loop()
            if loop is None:  # nobody waits any more
                self._queue.clear()
                return
            self._scheduled = True
            try:
                loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed
                self._scheduled = False
                self._queue.clear()

    def _drain(self) -> None:
        self._scheduled = False
        queue = self._queue
        while queue:
            future, err = queue.popleft()
            if not future.done():
                future.set_result(err)


class OneAck:
    """The delivery report of a single message (a registration): :meth:`wait` answers as
    :class:`Acks` does for a group of one, with one asyncio future and no lock; the reports
    reach the loop through its :class:`_AckInbox`."""

    __slots__ = ("_future", "_inbox", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._future: asyncio.Future[KafkaError | None] = loop.create_future()
        self._inbox = _AckInbox.of(loop)

    def expect(self) -> None:
        pass

    def unexpect(self) -> None:
        pass

    def __call__(self, err: KafkaError | None, _msg: Message) -> None:
        """The delivery callback (runs on the poll thread)."""
        self._inbox.put(self._future, err)

    async def wait(self, timeout_s: float) -> None:
        """Wait for the report; :class:`Unavailable` if it failed or did not come in time
        (checked twice a second for all of a loop's acks, not by a timer each: librdkafka
        reports every message by ``message.timeout.ms``, this is only the safety net)."""
        _AckDeadlines.of(self._loop).add(time.monotonic() + timeout_s, self._future)
        try:
            err = await self._future
        except TimeoutError:
            raise Unavailable(
                "the event broker did not acknowledge the events in time; retry",
                code="broker_timeout",
            ) from None
        if err is not None:
            log.warning("%d of %d deliveries failed: %s", 1, 1, err)
            raise Unavailable(
                "the event broker refused 1 of 1 events; retry", code="broker_unavailable"
            )


class Failures:
    """Delivery failures of a bulk send (the bulk producer reports only failures)."""

    __slots__ = ("count", "first")

    def __init__(self) -> None:
        self.count = 0
        self.first: KafkaError | None = None

    def __call__(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self.count += 1
            if self.first is None:
                self.first = err


class EventProducer:
    """Serializes events with the serde and produces them; one per process.

    Two librdkafka producers, both idempotent with ``acks=all``: one for requests (a delivery
    report per event, gathered by :class:`Acks`), and a bulk one for uploads that reports
    failures only (a million Python callbacks cost more CPU than parsing the rows); an upload
    is acknowledged when :meth:`flush_bulk` finds nothing left in flight and no failure was
    reported.
    """

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
        self._bulk = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": max(settings.producer_linger_ms, 20),
                "batch.size": 1_000_000,
                "compression.type": settings.producer_compression,
                "message.timeout.ms": settings.producer_message_timeout_ms,
                "queue.buffering.max.kbytes": settings.producer_queue_max_kbytes,
                "queue.buffering.max.messages": 500_000,
                "delivery.report.only.error": True,
                "client.id": "leadstream-ingest-bulk",
            }
        )
        self._bulk_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="ingest-producer", daemon=True)
        self._thread.start()
        self.dropped = 0

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)
            self._bulk.poll(0)

    def topic(self, logical: str) -> str:
        return self.settings.topic(logical)

    def encode(self, logical_topic: str, value: Mapping[str, Any]) -> bytes:
        """The framed Avro bytes of ``value`` (the codec's encoder compiled from the schema,
        ``leadstream.events.compiled``; fastavro for anything it does not take)."""
        return self.serde.serialize(value, logical_topic)

    def produce(
        self,
        logical_topic: str,
        value: bytes,
        key: str | bytes | None,
        headers: Headers | None,
        acks: Acks | OneAck,
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

    def produce_bulk(
        self,
        topic: str,
        value: bytes,
        key: str | bytes | None,
        headers: Headers | None,
        failures: Failures,
    ) -> None:
        """Hand one encoded event of an upload to the bulk producer (physical ``topic``),
        blocking while its queue is full. Blocking: call it from the parser thread."""
        give_up = time.monotonic() + self.ack_timeout_s
        while True:
            try:
                self._bulk.produce(topic, value, key, headers=headers, on_delivery=failures)
                return
            except BufferError:
                if time.monotonic() > give_up:
                    raise Unavailable(
                        "the event broker is not keeping up; retry", code="broker_backlog"
                    ) from None
                self._bulk.poll(0.005)

    def flush_bulk(self, failures: Failures) -> None:
        """Wait until every bulk event is delivered; :class:`Unavailable` when one failed or
        they were not all delivered in time. Blocking: call it from a worker thread."""
        with self._bulk_lock:
            remaining = self._bulk.flush(self.ack_timeout_s)
        if remaining:
            raise Unavailable(
                "the event broker did not acknowledge the events in time; retry",
                code="broker_timeout",
            )
        if failures.count:
            log.warning("%d upload deliveries failed: %s", failures.count, failures.first)
            raise Unavailable(
                f"the event broker refused {failures.count} events; retry",
                code="broker_unavailable",
            )

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
        remaining = self._producer.flush(timeout_s) + self._bulk.flush(timeout_s)
        if remaining:
            log.warning("%d events left unflushed at shutdown", remaining)
        self._stop.set()
        self._thread.join(timeout=5)


def new_producer(settings: Settings, serde: Serde) -> EventProducer:
    ingest = settings if isinstance(settings, IngestSettings) else IngestSettings.of(settings)
    return EventProducer(ingest, serde)
