"""The faust codec of the table's values: ``JobState`` Avro in the Confluent wire format.

It goes through :class:`leadstream.events.TopicCodec`, so ``jobs.state`` holds exactly what a
stock Avro deserializer with the registry (Kafka UI, kcat -s avro) reads.
"""

from __future__ import annotations

from typing import Any

import faust

from leadstream.events import TopicCodec
from leadstream.jobs import JobState


class JobStateCodec(faust.Codec):
    """JobState ↔ framed Avro bytes, for the table and its changelog ``jobs.state``."""

    def __init__(
        self, children: tuple[Any, ...] | None = None, *, codec: TopicCodec, **kwargs: Any
    ) -> None:
        super().__init__(children, codec=codec, **kwargs)  # kwargs: what clone() passes on
        self._codec = codec

    def _dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, JobState):
            raise TypeError(f"jobs.state holds JobState values, not {type(obj).__name__}")
        return self._codec.serialize(obj.to_record())

    def _loads(self, s: bytes) -> Any:
        return JobState.from_record(self._codec.deserialize(s))
