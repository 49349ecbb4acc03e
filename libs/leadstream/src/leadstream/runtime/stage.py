"""A stage: a name, its input topics and a pure batch handler."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from leadstream.runtime.records import Output, Record

Handler = Callable[[Sequence[Record]], Sequence[Sequence[Output]]]
"""Called with a batch of decoded records; returns, for each record in order, its outputs.

It may raise :class:`RetryLater` (transient), :class:`BadRecord` or any other exception (the
runtime then isolates the failing records and dead-letters them). Database side effects must be
idempotent: after a crash the same batch is handled again and must decide the same.
"""


@dataclass(frozen=True)
class Stage:
    """What a service registers with the runtime."""

    name: str
    inputs: Sequence[str]
    handler: Handler
    rejected_topics: Sequence[str] = ()
    """Output topics whose records are rejections (``leadstream_stage_records_rejected``)."""
    outcome_header: str | None = None
    """An output header whose value is the record's outcome (a verdict, a rejection reason):
    committed outputs are counted by it (``leadstream_stage_outcomes``). Keep its values few."""

    @property
    def consumer_group(self) -> str:
        return f"leadstream-{self.name}"
