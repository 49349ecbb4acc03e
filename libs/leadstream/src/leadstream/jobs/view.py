"""Read job states: tail the compacted ``jobs.state`` topic into a dict (no faust needed).

``jobs.state`` is written in Kafka transactions by the tracker, so it is read with
``isolation.level=read_committed``: a state is visible once the tracker committed it
(within ``LEADSTREAM_COMMIT_INTERVAL_S`` of the input, one second by default).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Self

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from leadstream.events import (
    EventSettings,
    RegistryUnavailableError,
    Serde,
    TopicCodec,
    UndecodableEventError,
)
from leadstream.jobs.errors import JobStateError, JobStateTimeout
from leadstream.jobs.state import JobState
from leadstream.settings import Settings

log = logging.getLogger(__name__)
STATE_TOPIC = "jobs.state"
Predicate = Callable[[JobState], bool]


class JobStateView:
    """Every job's latest state, kept current by a background thread.

    It reads ``jobs.state`` from the beginning (compaction keeps it small), then follows it.
    ``get``/``all`` answer from memory; ``wait_for`` blocks until a job's state satisfies a
    predicate. Call :meth:`close` (or use it as a context manager) to stop the thread.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        serde: Serde | None = None,
        poll_timeout_s: float = 0.2,
        timeout_s: float = 10.0,
    ) -> None:
        self.topic = settings.topic(STATE_TOPIC)
        self._owns_serde = serde is None
        if serde is None:
            events = settings if isinstance(settings, EventSettings) else EventSettings.of(settings)
            serde = Serde(events)
        self._serde = serde
        self._codec: TopicCodec = serde.codec(STATE_TOPIC)
        self._poll_timeout_s = poll_timeout_s
        self._states: dict[str, JobState] = {}
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._closed = False
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": f"jobs-view-{uuid.uuid4().hex}",  # never joined: we assign
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
            }
        )
        try:
            partitions = self._partitions(timeout_s)
        except BaseException:
            self._close_clients()
            raise
        self._behind = set(partitions)  # partitions not yet read to their end once
        self._consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        self._thread = threading.Thread(target=self._run, name="job-state-view", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ reading

    def get(self, job_id: str) -> JobState | None:
        """The latest state of a job, or None if none was read (yet)."""
        with self._cond:
            return self._states.get(job_id)

    def all(self) -> dict[str, JobState]:
        """Every job's latest state, by job id (a copy)."""
        with self._cond:
            return dict(self._states)

    @property
    def ready(self) -> bool:
        """Whether every partition was read to its end at least once."""
        with self._cond:
            return not self._behind

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until the view has caught up with the topic as it was; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._behind:
                self._raise_if_failed()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def wait_for(
        self, job_id: str, predicate: Predicate | None = None, timeout: float = 10.0
    ) -> JobState:
        """The job's state once it exists and ``predicate`` holds for it.

        Raises :class:`JobStateTimeout` (with the state last seen) after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                state = self._states.get(job_id)
                if state is not None and (predicate is None or predicate(state)):
                    return state
                self._raise_if_failed()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise JobStateTimeout(
                        f"job {job_id!r}: no matching state within {timeout:g}s (last: {state})",
                        last=state,
                    )
                self._cond.wait(remaining)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop the background thread and close the consumer."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._poll_timeout_s + 10.0)
        self._close_clients()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _partitions(self, timeout_s: float) -> list[int]:
        try:
            metadata = self._consumer.list_topics(self.topic, timeout=timeout_s)
        except KafkaException as exc:
            raise JobStateError(f"cannot read the metadata of {self.topic}: {exc}") from exc
        found = metadata.topics.get(self.topic)
        if found is None or found.error is not None or not found.partitions:
            why = found.error if found is not None else "missing"
            raise JobStateError(f"topic {self.topic} is not available ({why})")
        return sorted(found.partitions)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                msgs = self._consumer.consume(500, self._poll_timeout_s)
                updates: dict[str, JobState | None] = {}
                caught_up: set[int] = set()
                for msg in msgs:
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            caught_up.add(msg.partition() or 0)
                        elif err.fatal():
                            raise KafkaException(err)
                        else:
                            log.warning("%s: consumer error: %s", self.topic, err)
                        continue
                    key = msg.key()
                    if not key:
                        continue
                    job_id = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
                    value = msg.value()
                    if value is None:  # tombstone: the job was deleted
                        updates[job_id] = None
                        continue
                    state = self._decode(value if isinstance(value, bytes) else value.encode())
                    if state is not None:
                        updates[job_id] = state
                if updates or caught_up:
                    with self._cond:
                        for job_id, update in updates.items():
                            if update is None:
                                self._states.pop(job_id, None)
                            else:
                                self._states[job_id] = update
                        self._behind -= caught_up
                        self._cond.notify_all()
        except BaseException as exc:
            log.exception("%s: the job state view stopped", self.topic)
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def _decode(self, data: bytes) -> JobState | None:
        while True:
            try:
                return JobState.from_record(self._codec.deserialize(data))
            except RegistryUnavailableError as exc:
                log.warning("%s: schema registry unavailable, retrying: %s", self.topic, exc)
                if self._stopping.wait(1.0):
                    return None
            except (UndecodableEventError, KeyError, TypeError, ValueError) as exc:
                log.warning("%s: skipping a record that is not a JobState: %s", self.topic, exc)
                return None

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise JobStateError(f"the job state view stopped: {self._error}") from self._error

    def _close_clients(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RuntimeError):  # already closed
            self._consumer.close()
        if self._owns_serde:
            self._serde.close()


def read_job_state(
    settings: Settings, job_id: str, timeout_s: float = 10.0, *, serde: Serde | None = None
) -> JobState | None:
    """One job's latest committed state, read once from ``jobs.state`` (None if it has none).

    Raises :class:`JobStateTimeout` if the topic could not be read to its end in time.
    """
    with JobStateView(settings, serde=serde, timeout_s=timeout_s) as view:
        if not view.wait_ready(timeout_s):
            raise JobStateTimeout(f"{view.topic} was not read to its end within {timeout_s:g}s")
        return view.get(job_id)
