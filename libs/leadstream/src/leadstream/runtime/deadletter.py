"""Dead-letter records: the original bytes, plus headers saying where and why."""

from __future__ import annotations

import time
from collections.abc import Sequence

DLQ_PREFIX = "dlq."
SOURCE_TOPIC = "dlq.source.topic"
SOURCE_PARTITION = "dlq.source.partition"
SOURCE_OFFSET = "dlq.source.offset"
STAGE = "dlq.stage"
ERROR_CLASS = "dlq.error.class"
ERROR_MESSAGE = "dlq.error.message"
TIME = "dlq.time"
REDRIVE_COUNT = "dlq.redrive.count"
MAX_MESSAGE_CHARS = 2000


def dlq_topic(stage: str) -> str:
    """The logical dead-letter topic of a stage."""
    return f"{DLQ_PREFIX}{stage}"


def dlq_headers(
    *,
    original: Sequence[tuple[str, bytes | None]] | None,
    topic: str,
    partition: int,
    offset: int,
    stage: str,
    error: BaseException,
) -> list[tuple[str, bytes]]:
    """The original headers (minus earlier dead-letter headers) plus ours."""
    message = str(error) or repr(error)
    kept = [(k, v or b"") for k, v in (original or ()) if not k.startswith(DLQ_PREFIX)]
    redrives = [v for k, v in (original or ()) if k == REDRIVE_COUNT]
    ours = [
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
        (STAGE, stage.encode()),
        (ERROR_CLASS, type(error).__name__.encode()),
        (ERROR_MESSAGE, message[:MAX_MESSAGE_CHARS].encode("utf-8", "replace")),
        (TIME, str(int(time.time() * 1000)).encode()),
    ]
    if redrives and redrives[-1]:
        ours.append((REDRIVE_COUNT, redrives[-1]))
    return kept + ours
