"""The stage runtime: consume → pure handler → produce + commit in one Kafka transaction."""

from leadstream.runtime.codec import Codec
from leadstream.runtime.config import RuntimeConfig
from leadstream.runtime.deadletter import dlq_topic
from leadstream.runtime.errors import (
    BadRecord,
    FatalStageError,
    RetryLater,
    StageError,
    UndecodableRecord,
)
from leadstream.runtime.records import JOB_ID_HEADER, Output, Record
from leadstream.runtime.runner import Produced, RunResult, StageRunner
from leadstream.runtime.stage import Handler, Stage

__all__ = [
    "JOB_ID_HEADER",
    "BadRecord",
    "Codec",
    "FatalStageError",
    "Handler",
    "Output",
    "Produced",
    "Record",
    "RetryLater",
    "RunResult",
    "RuntimeConfig",
    "Stage",
    "StageError",
    "StageRunner",
    "UndecodableRecord",
    "dlq_topic",
]
