"""Per-stage lag, rates and dead letters for the status page, read from Kafka and shared.

One :class:`PipelineSampler` per process takes a :class:`leadstream.ops.status.StatusReader`
snapshot (blocking admin calls, run in a thread) at most once per ``max_age_s``, whatever the
number of browsers polling. Rates are averaged against the oldest snapshot of the last
``window_s`` (a one-second difference of committed offsets is mostly noise). A request never
waits more than ``wait_s`` for Kafka: past that it gets the last sample, marked with its age
and the error; after a failure Kafka is asked again only after ``retry_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from leadstream.ops.status import RUNTIME_STAGES, PipelineStatus, StatusReader, with_rates
from leadstream.runtime.deadletter import dlq_topic
from leadstream.settings import Settings
from leadstream.topics import CATALOG, DLQ_STAGES, Kind, TopicSpec

log = logging.getLogger(__name__)


def outputs_of(stage: str, catalog: Sequence[TopicSpec] = CATALOG) -> list[str]:
    """The logical topics a stage writes (its dead-letter topic aside), from the catalog."""
    return [
        t.name
        for t in catalog
        if t.kind != Kind.DLQ and any(p.split(" ", 1)[0] == stage for p in t.producers)
    ]


@dataclass(frozen=True)
class StageSample:
    """One stage as the page shows it; rates are records/s, None until two snapshots exist."""

    stage: str
    group: str
    state: str
    instances: int
    lag: int
    rate_in: float | None
    rate_out: float | None
    dead_letters: int
    dead_letter_rate: float | None
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Sample:
    stages: tuple[StageSample, ...] = ()
    taken_at: float | None = None  # time.time() of the snapshot shown
    error: str | None = None  # why the sample is not fresh (Kafka did not answer)


def summarize(status: PipelineStatus, settings: Settings) -> tuple[StageSample, ...]:
    """The page's rows of a snapshot that :func:`with_rates` has filled in (or not)."""
    rates = {t.topic: t.rate for t in status.topics}
    out = []
    for st in status.stages:
        outputs = tuple(outputs_of(st.stage))
        known = [rates.get(settings.topic(t)) for t in outputs]
        rate_out = None if not outputs or None in known else sum(r or 0.0 for r in known)
        dlq = settings.topic(dlq_topic(st.stage)) if st.stage in DLQ_STAGES else None
        out.append(
            StageSample(
                stage=st.stage,
                group=st.group,
                state=st.state,
                instances=st.members,
                lag=st.lag,
                rate_in=st.rate_in,
                rate_out=rate_out,
                dead_letters=st.dead_letters,
                dead_letter_rate=rates.get(dlq) if dlq is not None else None,
                outputs=outputs,
            )
        )
    return tuple(out)


@dataclass
class PipelineSampler:
    settings: Settings
    stages: Sequence[str] = RUNTIME_STAGES
    max_age_s: float = 1.0
    window_s: float = 10.0
    wait_s: float = 3.0
    retry_s: float = 5.0
    _reader: StatusReader | None = None
    _history: deque[PipelineStatus] = field(default_factory=lambda: deque(maxlen=64))
    _sample: Sample = field(default_factory=Sample)
    _checked_at: float = float("-inf")  # monotonic time of the last attempt
    _failed: bool = False
    _task: asyncio.Task[Sample] | None = None

    async def current(self) -> Sample:
        """The latest sample, refreshed when older than ``max_age_s`` (``retry_s`` after a
        failure), waiting at most ``wait_s`` for it."""
        age = time.monotonic() - self._checked_at
        if age < (self.retry_s if self._failed else self.max_age_s):
            return self._sample
        if self._task is None:
            self._task = asyncio.create_task(self._refresh())
        task = self._task
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), self.wait_s)
        if task.done():
            return self._sample
        return Sample(self._sample.stages, self._sample.taken_at, "Kafka is slow to answer")

    async def _refresh(self) -> Sample:
        try:
            status = await asyncio.to_thread(self._snapshot)
        except Exception as exc:  # the page shows the last sample and the error
            log.warning("pipeline status: Kafka did not answer: %s", exc)
            self._failed = True
            last = self._sample
            self._sample = Sample(last.stages, last.taken_at, "Kafka did not answer")
        else:
            self._failed = False
            self._sample = Sample(summarize(status, self.settings), time.time(), None)
        finally:
            self._checked_at = time.monotonic()
            self._task = None
        return self._sample

    def _snapshot(self) -> PipelineStatus:
        if self._reader is None:
            self._reader = StatusReader(self.settings, self.stages)
        fresh = self._reader.snapshot()
        while self._history and fresh.taken_at - self._history[0].taken_at > self.window_s:
            self._history.popleft()
        base = self._history[0] if self._history else None
        self._history.append(fresh)
        # with_rates fills ``fresh`` in place; the history only reads offsets from it.
        return with_rates(base, fresh) if base is not None else fresh
