"""The counter: a stage of the shared runtime that re-keys stage outputs by job id.

It reads every stage output and dead-letter topic (``read_committed``) and ``jobs.events``,
sums each batch per job into a :class:`Delta` (headers only; only JobEvents are decoded) and
writes one delta per job to ``jobs.deltas``, keyed by job id. The runtime commits the deltas
and the input offsets in one Kafka transaction, so each input is counted exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from leadstream.events import Serde
from leadstream.jobs import headers as h
from leadstream.runtime import Output, Record, Stage
from leadstream.settings import Settings
from leadstream.topics import DLQ_STAGES
from leadstream_jobs.counting import count_job_event, count_record
from leadstream_jobs.delta import Delta

STAGE_NAME = "jobs"  # consumer group leadstream-jobs, dead letters to dlq.jobs
DELTAS_TOPIC = "jobs.deltas"
EVENTS_TOPIC = "jobs.events"
STAGE_OUTPUTS = (
    "contacts.raw",
    "contacts.filtered",
    "contacts.rejected",
    "contacts.verified",
    "batches.ready",
    "batches.synced",
)
# Every dead-letter topic but our own (counting dlq.jobs would count our own failures).
DLQ_INPUTS = tuple(f"dlq.{stage}" for stage in DLQ_STAGES if stage != STAGE_NAME)
INPUTS = (*STAGE_OUTPUTS, *DLQ_INPUTS, EVENTS_TOPIC)


class CounterCodec:
    """The runtime codec of the counter: decodes only ``jobs.events`` (Avro, via the serde);
    stage outputs are not decoded at all; deltas are written as JSON."""

    def __init__(self, settings: Settings, serde: Serde) -> None:
        self._events_topic = settings.topic(EVENTS_TOPIC)
        self._events = serde.codec(EVENTS_TOPIC)

    def deserialize(self, data: bytes, topic: str) -> dict[str, Any]:
        if topic == self._events_topic:
            return self._events.deserialize(data)
        return {}  # stage outputs: the headers are all the counter reads

    def serialize(self, record: Mapping[str, Any], topic: str) -> bytes:
        return json.dumps(record, separators=(",", ":")).encode()


def counter_stage(settings: Settings, on_deltas: Callable[[], None] | None = None) -> Stage:
    """The counter stage for these settings (topic prefix); ``on_deltas`` is called for each
    batch that hands out deltas."""
    prefix = settings.topic_prefix
    events_topic = settings.topic(EVENTS_TOPIC)

    def handle(records: Sequence[Record]) -> list[list[Output]]:
        deltas: dict[str, Delta] = {}
        for r in records:
            if r.topic == events_topic:
                count_job_event(r.value, deltas)
            else:
                logical = r.topic[len(prefix) :] if r.topic.startswith(prefix) else r.topic
                count_record(logical, r.headers, r.timestamp_ms, deltas)
        outputs = [
            Output(DELTAS_TOPIC, d.to_wire(), key=job_id, headers={h.JOB_ID: job_id})
            for job_id, d in deltas.items()
        ]
        if outputs and on_deltas is not None:
            on_deltas()
        # The batch's deltas ride on its last record: the runtime commits them all together.
        return [[] for _ in records[:-1]] + [outputs] if records else []

    return Stage(STAGE_NAME, INPUTS, handle)
