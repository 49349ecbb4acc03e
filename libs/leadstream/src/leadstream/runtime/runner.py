"""The one loop every stage runs: consume a batch, handle it, produce its outputs and commit
its input offsets in one Kafka transaction. Retries, dead letters, rebalances and shutdown
live here, once."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from leadstream.events.errors import RegistryUnavailableError
from leadstream.runtime import metrics
from leadstream.runtime.backoff import backoff_delay
from leadstream.runtime.codec import Codec
from leadstream.runtime.config import RuntimeConfig
from leadstream.runtime.deadletter import dlq_headers, dlq_topic
from leadstream.runtime.errors import FatalStageError, RetryLater, UndecodableRecord
from leadstream.runtime.records import (
    JOB_ID_HEADER,
    REPLAY_ID_HEADER,
    Headers,
    Output,
    Record,
    header_list,
)
from leadstream.runtime.stage import Stage
from leadstream.settings import Settings

log = logging.getLogger(__name__)
_FENCED_CODES = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED})
TP = tuple[str, int]


class Wedged(Exception):
    """A client call did not return within its bound (see :class:`Bounded`)."""


class Bounded:
    """Runs a blocking client call in a daemon thread and waits at most ``timeout_s`` for it.

    librdkafka (up to 2.14 at least: confluentinc/librdkafka#5456, #5511) can block forever in
    ``send_offsets_to_transaction`` when the group coordinator went away mid-transaction (a
    broker restart), whatever timeout it is given: the stage then stops without an error. On
    :class:`Wedged` the caller abandons the client; the stuck thread cannot be interrupted and
    is left behind (a daemon, so it never holds up the process's exit).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.abandoned = 0

    def __call__(self, fn: Callable[[], object], timeout_s: float) -> None:
        done = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # re-raised in the caller's thread
                failure.append(exc)
            finally:
                done.set()

        threading.Thread(target=run, name=self.name, daemon=True).start()
        if not done.wait(timeout_s):
            self.abandoned += 1
            raise Wedged(f"{self.name}: no answer after {timeout_s:.0f}s")
        if failure:
            raise failure[0]


def group_steady(stats_json: str) -> bool | None:
    """Whether librdkafka's statistics say the consumer is a settled group member (``cgrp``
    state ``up``, join state ``steady``); None when they do not tell."""
    try:
        cgrp = json.loads(stats_json).get("cgrp")
    except (ValueError, AttributeError):
        return None
    if not isinstance(cgrp, dict) or "state" not in cgrp:
        return None
    return bool(cgrp.get("state") == "up" and cgrp.get("join_state") == "steady")


@dataclass(frozen=True, slots=True)
class Produced:
    """A record the runner committed (kept only when ``collect=True``, for tests)."""

    topic: str
    key: bytes | None
    value: dict[str, Any] | None
    headers: Headers


@dataclass
class RunResult:
    """What a bounded run did."""

    records_in: int = 0
    records_out: int = 0
    dead_lettered: int = 0
    retries: int = 0
    aborts: int = 0
    produced: list[Produced] = field(default_factory=list)
    first_record_at: float | None = None  # time.monotonic() when the first batch arrived
    last_commit_at: float | None = None  # time.monotonic() of the last committed batch


@dataclass(slots=True)
class _Pending:
    """One encoded record waiting for the batch's transaction."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    decoded: dict[str, Any] | None
    error: str | None = None  # the error class of a dead letter

    @property
    def dead(self) -> bool:
        return self.error is not None


@dataclass(slots=True)  # not frozen: built per message, and frozen __init__ costs a call per field
class _Raw:
    """A consumed message with its fields read once (the client's accessors are optional-typed)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int

    @classmethod
    def of(cls, m: Message) -> _Raw:
        key = m.key()
        value = m.value()
        return cls(
            topic=m.topic() or "",
            partition=m.partition() or 0,
            offset=m.offset() or 0,
            key=key.encode() if isinstance(key, str) else key,
            value=value.encode() if isinstance(value, str) else value,
            headers=header_list(m.headers()),
            timestamp_ms=m.timestamp()[1],
        )


class _RetryBatch(Exception):
    def __init__(self, cause: RetryLater) -> None:
        super().__init__(str(cause))
        self.cause = cause


class StageRunner:
    """Runs one :class:`Stage` against Kafka with exactly-once semantics."""

    def __init__(
        self,
        stage: Stage,
        settings: Settings,
        codec: Codec,
        config: RuntimeConfig | None = None,
    ) -> None:
        self.stage = stage
        self.settings = settings
        self.codec = codec
        self.config = config or RuntimeConfig()
        self.group = settings.topic(stage.consumer_group)
        self.dlq = settings.topic(dlq_topic(stage.name))
        self.inputs = [settings.topic(t) for t in stage.inputs]
        self.rejected_topics = frozenset(settings.topic(t) for t in stage.rejected_topics)
        self._stopping = False
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._paused: dict[TP, float] = {}
        self._attempts: dict[TP, tuple[int, int]] = {}
        self._result = RunResult()
        self._collect = False
        self.last_loop = time.monotonic()
        self.assigned: set[TP] = set()
        self._lag_due = 0.0
        self._bounded = Bounded(f"{stage.name}-offsets")
        self._group_ok_at = time.monotonic()
        # Wedged clients, kept so that none is freed while a call of it is still blocked.
        self._abandoned: list[Producer] = []
        self._abandoned_consumers: list[Consumer] = []
        self._topics: dict[str, str] = {}  # logical → physical output topic

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand and exit."""
        self._stopping = True

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT finish the current batch, commit it and leave the group."""

        def _handler(signum: int, _frame: FrameType | None) -> None:
            log.info("%s: signal %d, stopping after the current batch", self.stage.name, signum)
            self.stop()

        signal.signal(signal.SIGTERM, _handler)
        signal.signal(signal.SIGINT, _handler)

    def run(
        self,
        *,
        max_outputs: int | None = None,
        max_records: int | None = None,
        idle_timeout_s: float | None = None,
        collect: bool = False,
    ) -> RunResult:
        """Loop until stopped, or (bounded mode) until ``max_outputs`` outputs were committed,
        ``max_records`` inputs were consumed, or no record arrived for ``idle_timeout_s``."""
        self._result = RunResult()
        self._collect = collect
        self._stopping = False
        self._consumer = self._new_consumer()
        self._producer = self._new_producer()
        last_data = time.monotonic()
        thresholds = gc.get_threshold()
        if self.config.gc_gen0_threshold:
            gc.set_threshold(self.config.gc_gen0_threshold, *thresholds[1:])
        try:
            while not self._stopping:
                self.last_loop = time.monotonic()
                metrics.LAST_LOOP.labels(self.stage.name).set(time.time())
                if self.last_loop >= self._lag_due:
                    self._lag_due = self.last_loop + self.config.lag_interval_s
                    self._refresh_lag()
                self._resume_due()
                msgs = self._consumer.consume(
                    num_messages=self.config.batch_size, timeout=self.config.poll_timeout_s
                )
                if time.monotonic() - self._group_ok_at > self.config.group_stuck_s:
                    self._replace_consumer()
                    continue
                raws = [_Raw.of(m) for m in msgs if self._usable(m)]
                if raws:
                    last_data = time.monotonic()
                    if self._result.first_record_at is None:
                        self._result.first_record_at = last_data
                    self._process(raws)
                elif idle_timeout_s is not None and time.monotonic() - last_data > idle_timeout_s:
                    break
                r = self._result
                if (max_outputs is not None and r.records_out >= max_outputs) or (
                    max_records is not None and r.records_in >= max_records
                ):
                    break
        finally:
            gc.set_threshold(*thresholds)
            self._close()
        return self._result

    def _close(self) -> None:
        self._forget_lag(self.assigned)
        if self._consumer is not None:
            try:
                self._consumer.close()
            except KafkaException as exc:  # closing must not mask the loop's own error
                log.warning("%s: consumer close failed: %s", self.stage.name, exc)
            self._consumer = None
        if self._producer is not None:
            try:
                self._producer.flush(5)
            except KafkaException as exc:  # e.g. fenced: the loop's own error is what matters
                log.warning("%s: producer flush on close failed: %s", self.stage.name, exc)
            self._producer = None

    # ------------------------------------------------------------------ clients

    def _new_consumer(self) -> Consumer:
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "group.id": self.group,
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": self.config.session_timeout_ms,
                "max.poll.interval.ms": self.config.max_poll_interval_ms,
                "client.id": f"{self.group}-{self.config.instance_id}",
                "statistics.interval.ms": 5000,
                "stats_cb": self._on_stats,
                **(
                    {"group.instance.id": f"{self.group}-{self.config.instance_id}"}
                    if self.config.static_membership
                    else {}
                ),
            }
        )
        self._group_ok_at = time.monotonic()
        consumer.subscribe(
            self.inputs,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        return consumer

    def _on_stats(self, stats_json: str) -> None:
        if group_steady(stats_json):
            self._group_ok_at = time.monotonic()

    def _replace_consumer(self) -> None:
        """A consumer that lost its group during a broker restart and never joined again (seen
        with librdkafka 2.13: it polled on, out of the group, for minutes) is closed and made
        anew. No transaction is open here: they never span a ``consume()``."""
        log.warning(
            "%s: not a settled group member for %.0fs; new consumer",
            self.stage.name,
            time.monotonic() - self._group_ok_at,
        )
        old = self._consumer
        self._consumer = None
        self.assigned.clear()
        self._paused.clear()
        self._attempts.clear()
        if old is not None:
            try:
                self._bounded(old.close, 15)
            except Wedged:
                self._abandoned_consumers.append(old)
            except KafkaException as exc:
                log.warning("%s: closing the old consumer: %s", self.stage.name, exc)
        self._consumer = self._new_consumer()

    def _new_producer(self) -> Producer:
        producer = Producer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "transactional.id": f"{self.group}-{self.config.instance_id}",
                "transaction.timeout.ms": self.config.transaction_timeout_ms,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
            }
        )
        self._init_transactions(producer)
        return producer

    def _init_transactions(self, producer: Producer) -> None:
        """``init_transactions``, again and again while the broker cannot answer: a broker
        restart that outlasts one call's timeout must not end the process (a stage ran into
        it and exited). A stop request ends the wait."""
        attempt = 0
        while True:
            try:
                producer.init_transactions(30)
                return
            except KafkaException as exc:
                err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                retriable = err is not None and (
                    err.retriable() or err.code() == KafkaError._TIMED_OUT
                )
                if not retriable or self._stopping:
                    raise
                attempt += 1
                log.warning("%s: init_transactions: %s; retrying", self.stage.name, err)
                time.sleep(backoff_delay(attempt, base_s=0.5, cap_s=5.0))

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned |= {(p.topic, p.partition) for p in partitions}
        log.info("%s: assigned %s", self.stage.name, _fmt(partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Transactions never span a consume() call, so nothing is in flight here: forget the
        # retry state of partitions that another instance now owns.
        for p in partitions:
            tp = (p.topic, p.partition)
            self.assigned.discard(tp)
            self._paused.pop(tp, None)
            self._attempts.pop(tp, None)
        self._forget_lag({(p.topic, p.partition) for p in partitions})
        log.info("%s: revoked %s", self.stage.name, _fmt(partitions))

    def _usable(self, msg: Message) -> bool:
        err = msg.error()
        if err is None:
            return True
        if err.code() == KafkaError._PARTITION_EOF:
            return False
        if err.fatal():
            raise KafkaException(err)
        log.warning("%s: consumer error: %s", self.stage.name, err)
        return False

    # ------------------------------------------------------------------ one batch

    def _process(self, msgs: list[_Raw]) -> None:
        name = self.stage.name
        starts: dict[TP, int] = {}
        ends: dict[TP, int] = {}
        for m in msgs:
            tp = (m.topic, m.partition)
            starts.setdefault(tp, m.offset)
            ends[tp] = m.offset + 1
        began = time.perf_counter()
        exhausted = any(
            self._attempts.get(tp, (-1, 0)) == (off, self.config.max_retry_attempts)
            for tp, off in starts.items()
        )
        try:
            pending, event_times = self._handle(msgs, isolate=exhausted)
        except _RetryBatch as retry:
            self._schedule_retry(starts, retry.cause)
            return
        metrics.BATCH_SECONDS.labels(name).observe(time.perf_counter() - began)
        if self._commit(pending, ends, starts):
            for tp in starts:
                self._attempts.pop(tp, None)
            self._account(msgs, pending, event_times)

    def _handle(self, msgs: list[_Raw], *, isolate: bool) -> tuple[list[_Pending], list[int]]:
        """Decode, call the handler, encode. Records that fail become dead letters.

        Also returns each input's event time in epoch ms (its ``event_time`` field when it has
        one, else its Kafka timestamp), for the end-to-end latency.
        """
        records: list[Record] = []
        positions: list[int] = []
        dead: dict[int, BaseException] = {}
        event_times = [m.timestamp_ms for m in msgs]
        for i, m in enumerate(msgs):
            try:
                if m.value is None:
                    raise UndecodableRecord("empty value (tombstone) on a stage input")
                value = self.codec.deserialize(m.value, m.topic)
            except RegistryUnavailableError as exc:
                raise _RetryBatch(RetryLater(str(exc))) from exc
            except Exception as exc:  # any other decode failure is a dead letter
                dead[i] = exc if isinstance(exc, UndecodableRecord) else _undecodable(exc)
                continue
            event_times[i] = _event_time_ms(value, m.timestamp_ms)
            records.append(
                Record(
                    m.topic,
                    m.partition,
                    m.offset,
                    m.key,
                    value,
                    dict(m.headers),
                    m.timestamp_ms,
                )
            )
            positions.append(i)
        results = self._call_handler(records, isolate=isolate)
        by_index = dict(zip(positions, results, strict=True))
        pending: list[_Pending] = []
        for i, m in enumerate(msgs):
            res = dead.get(i) or by_index.get(i)
            if isinstance(res, BaseException):
                pending.append(self._dead_letter(m, res))
                continue
            assert res is not None
            try:
                pending.extend(self._encode(m, res))
            except RegistryUnavailableError as exc:
                raise _RetryBatch(RetryLater(str(exc))) from exc
            except Exception as exc:
                pending.append(self._dead_letter(m, exc))
        return pending, event_times

    def _call_handler(
        self, records: list[Record], *, isolate: bool
    ) -> list[Sequence[Output] | BaseException]:
        if not records:
            return []
        if not isolate:
            try:
                out = list(self.stage.handler(records))
                if len(out) != len(records):
                    raise TypeError(
                        f"handler returned {len(out)} results for {len(records)} records"
                    )
                return list(out)
            except RetryLater as exc:
                raise _RetryBatch(exc) from exc
            except FatalStageError:
                raise
            except Exception:
                log.exception("%s: batch handler failed; isolating records", self.stage.name)
        results: list[Sequence[Output] | BaseException] = []
        for rec in records:
            try:
                results.append(next(iter(self.stage.handler([rec]))))
            except RetryLater as exc:
                if not isolate:
                    raise _RetryBatch(exc) from exc
                results.append(exc)
            except FatalStageError:
                raise
            except Exception as exc:
                results.append(exc)
        return results

    def _encode(self, src: _Raw, outputs: Sequence[Output]) -> list[_Pending]:
        # the first non-empty job_id / replay.id header of the input (one pass)
        job: bytes | None = None
        replay: bytes | None = None
        for k, v in src.headers:
            if v:
                if k == JOB_ID_HEADER:
                    if job is None:
                        job = v
                elif k == REPLAY_ID_HEADER and replay is None:
                    replay = v
        out: list[_Pending] = []
        for o in outputs:
            topic = self._topics.get(o.topic) or self._topic(o.topic)
            headers: Headers = (
                [(k, v.encode() if isinstance(v, str) else v) for k, v in o.headers.items()]
                if o.headers
                else []
            )
            if job is not None and JOB_ID_HEADER not in o.headers:
                headers.append((JOB_ID_HEADER, job))
            if replay is not None and REPLAY_ID_HEADER not in o.headers:
                headers.append((REPLAY_ID_HEADER, replay))
            key = o.key.encode() if isinstance(o.key, str) else o.key
            value = None if o.value is None else self.codec.serialize(o.value, topic)
            out.append(_Pending(topic, key, value, headers, o.value))
        return out

    def _topic(self, name: str) -> str:
        topic = self._topics[name] = self.settings.topic(name)
        return topic

    def _dead_letter(self, m: _Raw, error: BaseException) -> _Pending:
        log.warning(
            "%s: dead-lettering %s[%d]@%d: %s: %s",
            self.stage.name,
            m.topic,
            m.partition,
            m.offset,
            type(error).__name__,
            error,
        )
        headers = dlq_headers(
            original=m.headers,
            topic=m.topic,
            partition=m.partition,
            offset=m.offset,
            stage=self.stage.name,
            error=error,
        )
        return _Pending(self.dlq, m.key, m.value, headers, None, error=type(error).__name__)

    # ------------------------------------------------------------------ transaction

    def _commit(self, pending: list[_Pending], ends: dict[TP, int], starts: dict[TP, int]) -> bool:
        """Produce and commit atomically; on an abortable error rewind so the batch is redone."""
        assert self._producer is not None
        assert self._consumer is not None
        began = time.perf_counter()
        producer = self._producer
        try:
            producer.begin_transaction()
            for p in pending:
                while True:
                    try:
                        producer.produce(p.topic, value=p.value, key=p.key, headers=list(p.headers))
                        break
                    except BufferError:
                        producer.poll(0.05)
            offsets = [TopicPartition(t, part, off) for (t, part), off in ends.items()]
            group = self._consumer.consumer_group_metadata()
            txn_s = self.config.transaction_timeout_ms / 1000
            self._bounded(
                lambda: producer.send_offsets_to_transaction(offsets, group, txn_s), txn_s + 5
            )
            self._commit_with_retries(producer)
        except Wedged as exc:
            # The transaction cannot commit any more (the broker aborts it after
            # transaction.timeout.ms); a new producer with the same transactional id fences
            # the stuck one and makes sure of the abort.
            self._result.aborts += 1
            metrics.ABORTS.labels(self.stage.name).inc()
            log.warning("%s: %s; new producer", self.stage.name, exc)
            self._abandoned.append(producer)
            self._producer = self._new_producer()
            self._rewind(starts)
            return False
        except KafkaException as exc:
            err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            self._result.aborts += 1
            metrics.ABORTS.labels(self.stage.name).inc()
            if err is not None and err.txn_requires_abort():
                log.warning("%s: aborting transaction: %s", self.stage.name, err)
                try:
                    producer.abort_transaction(30)
                except KafkaException:
                    self._producer = self._recreate_producer()
            elif err is not None and err.code() in _FENCED_CODES:
                # Another process now owns our transactional id (a restarted replica with the
                # same instance id): this one is a zombie and must not fight it for the id.
                raise FatalStageError(
                    f"{self.stage.name}: fenced by another instance with transactional id "
                    f"{self.group}-{self.config.instance_id}: {err}"
                ) from exc
            else:
                log.warning("%s: transaction failed (%s); new producer", self.stage.name, exc)
                self._producer = self._recreate_producer()
            self._rewind(starts)
            return False
        metrics.TRANSACTION_SECONDS.labels(self.stage.name).observe(time.perf_counter() - began)
        return True

    def _commit_with_retries(self, producer: Producer) -> None:
        for attempt in range(1, 6):
            try:
                producer.commit_transaction(30)
                return
            except KafkaException as exc:
                err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                if err is None or not err.retriable() or attempt == 5:
                    raise
                time.sleep(backoff_delay(attempt, base_s=0.2, cap_s=2.0))

    def _recreate_producer(self) -> Producer:
        """After fencing, a fatal error or a transaction timeout: a fresh producer (same id)."""
        old = self._producer
        if old is not None:
            try:
                old.flush(1)
            except KafkaException:
                log.debug("%s: flush of the old producer failed", self.stage.name)
        return self._new_producer()

    def _rewind(self, starts: dict[TP, int]) -> None:
        assert self._consumer is not None
        for (topic, part), off in starts.items():
            if (topic, part) in self.assigned:
                self._consumer.seek(TopicPartition(topic, part, off))

    # ------------------------------------------------------------------ retries

    def _schedule_retry(self, starts: dict[TP, int], cause: RetryLater) -> None:
        """Rewind the batch's partitions and pause them for a backoff; other partitions go on."""
        assert self._consumer is not None
        attempts = 0
        for tp, off in starts.items():
            prev_off, prev_n = self._attempts.get(tp, (off, 0))
            attempts = max(attempts, prev_n + 1 if prev_off == off else 1)
        attempts = min(attempts, self.config.max_retry_attempts)
        delay = (
            cause.delay_s
            if cause.delay_s is not None
            else backoff_delay(
                attempts, base_s=self.config.retry_base_s, cap_s=self.config.retry_cap_s
            )
        )
        log.warning(
            "%s: retry %d/%d in %.1fs: %s",
            self.stage.name,
            attempts,
            self.config.max_retry_attempts,
            delay,
            cause,
        )
        self._result.retries += 1
        metrics.RETRIES.labels(self.stage.name).inc()
        resume_at = time.monotonic() + delay
        tps = []
        for tp, off in starts.items():
            self._attempts[tp] = (off, attempts)
            self._paused[tp] = resume_at
            tps.append(TopicPartition(tp[0], tp[1], off))
        self._rewind(starts)
        self._consumer.pause(tps)

    def _resume_due(self) -> None:
        if not self._paused or self._consumer is None:
            return
        now = time.monotonic()
        due = [tp for tp, at in self._paused.items() if at <= now]
        if due:
            for tp in due:
                del self._paused[tp]
            self._consumer.resume([TopicPartition(t, p) for t, p in due])

    # ------------------------------------------------------------------ accounting

    def _account(self, msgs: list[_Raw], pending: list[_Pending], event_times: list[int]) -> None:
        name = self.stage.name
        r = self._result
        r.records_in += len(msgs)
        r.last_commit_at = time.monotonic()
        metrics.RECORDS_IN.labels(name).inc(len(msgs))
        metrics.BATCH_RECORDS.labels(name).observe(len(msgs))
        now_ms = time.time() * 1000
        latency = metrics.END_TO_END_SECONDS.labels(name)
        # A sample of up to ~16 records per batch is enough for a histogram, and keeps the
        # cost per batch flat.
        for event_ms in event_times[:: max(1, len(event_times) // 16)]:
            if event_ms > 0:
                latency.observe(max(0.0, now_ms - event_ms) / 1000)
        out_per_topic: dict[str, int] = {}
        dead_per_error: dict[str, int] = {}
        outcomes: dict[tuple[str, str], int] = {}
        outcome_header = self.stage.outcome_header
        for p in pending:
            if p.error is not None:
                r.dead_lettered += 1
                dead_per_error[p.error] = dead_per_error.get(p.error, 0) + 1
            else:
                out_per_topic[p.topic] = out_per_topic.get(p.topic, 0) + 1
                if outcome_header is not None:
                    key = (p.topic, _header_text(p.headers, outcome_header))
                    outcomes[key] = outcomes.get(key, 0) + 1
            if self._collect:
                r.produced.append(Produced(p.topic, p.key, p.decoded, p.headers))
        for topic, n in out_per_topic.items():
            r.records_out += n
            metrics.RECORDS_OUT.labels(name, topic).inc(n)
            if topic in self.rejected_topics:
                metrics.RECORDS_REJECTED.labels(name, topic).inc(n)
        for error, n in dead_per_error.items():
            metrics.DEAD_LETTERED.labels(name, error).inc(n)
        for (topic, outcome), n in outcomes.items():
            metrics.OUTCOMES.labels(name, topic, outcome).inc(n)

    # ------------------------------------------------------------------ consumer lag

    def _refresh_lag(self) -> None:
        """Set the lag gauge of every assigned partition: high watermark minus position.

        Both numbers are the client's own (the watermark as of the last fetch response), so
        this costs no request to the broker. A paused partition is not fetched: its watermark
        is as old as the pause. Control records (transaction markers) are counted in neither,
        so an idle consumer shows 0.
        """
        consumer = self._consumer
        if consumer is None or not self.assigned:
            return
        try:
            positions = consumer.position([TopicPartition(t, p) for t, p in self.assigned])
        except KafkaException as exc:
            log.debug("%s: no positions for the lag gauge: %s", self.stage.name, exc)
            return
        for tp in positions:
            if tp.offset < 0:  # nothing consumed yet on this partition
                continue
            try:
                _low, high = consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            if high < 0:
                continue
            gauge = metrics.CONSUMER_LAG.labels(self.stage.name, tp.topic, str(tp.partition))
            gauge.set(max(0, high - tp.offset))

    def _forget_lag(self, partitions: set[TP]) -> None:
        """Drop the lag series of partitions this instance no longer owns."""
        for topic, part in partitions:
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(self.stage.name, topic, str(part))


def _header_text(headers: Headers, name: str) -> str:
    """A header's value as text, for a metric label ("" when the record has none)."""
    value = next((v for k, v in headers if k == name), None)
    if value is None:
        return ""
    return value.decode("utf-8", "replace")


def _event_time_ms(value: Any, fallback_ms: int) -> int:
    """An event's own ``event_time`` (epoch ms, or a datetime as Avro decodes it)."""
    if isinstance(value, dict):
        event_time = value.get("event_time")
        if isinstance(event_time, datetime):
            return int(event_time.timestamp() * 1000)
        if isinstance(event_time, int) and not isinstance(event_time, bool):
            return event_time
    return fallback_ms


def _undecodable(exc: BaseException) -> UndecodableRecord:
    err = UndecodableRecord(f"{type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err


def _fmt(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "-"


__all__ = ["Produced", "RunResult", "StageRunner"]
