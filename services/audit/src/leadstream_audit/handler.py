"""The audit stage: batches of ``RequestLog`` / ``AuditEvent`` records → bulk inserts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from leadstream.runtime import Output, Record, Stage
from leadstream.settings import Settings
from leadstream_audit.documents import BUILDERS, COLLECTIONS

STAGE = "audit"


class DocumentSink(Protocol):
    def insert(self, collection: str, documents: Sequence[dict[str, Any]]) -> int: ...


def make_handler(
    sink: DocumentSink, settings: Settings, clock: Callable[[], datetime] | None = None
) -> Callable[[Sequence[Record]], list[list[Output]]]:
    """One bulk insert per collection per batch; the stage produces nothing. A record that
    cannot become a document raises, and the runtime isolates and dead-letters it."""
    collections = {settings.topic(topic): coll for topic, coll in COLLECTIONS.items()}
    now = clock or (lambda: datetime.now(UTC))

    def handle(records: Sequence[Record]) -> list[list[Output]]:
        stored_at = now()
        batches: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in records:
            collection = collections[record.topic]
            batches[collection].append(BUILDERS[collection](record.value, stored_at))
        for collection, documents in batches.items():
            sink.insert(collection, documents)
        return [[] for _ in records]

    return handle


def audit_stage(sink: DocumentSink, settings: Settings) -> Stage:
    return Stage(STAGE, list(COLLECTIONS), make_handler(sink, settings))
