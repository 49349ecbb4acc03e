"""A stage process for crash tests: ``python -m tests.support.stage_proc INSTANCE_ID``.

Reads topic ``in``, writes ``{"n": n}`` to ``out`` (prefix from LEADSTREAM_TOPIC_PREFIX), runs
until SIGTERM like a real service, or is SIGKILLed by the test.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from leadstream.runtime import Output, Record, RuntimeConfig, Stage, StageRunner
from leadstream.settings import Settings
from tests.support.kafka import JsonCodec


def copy(records: Sequence[Record]) -> list[list[Output]]:
    return [[Output("out", {"n": r.value["n"]}, key=r.key)] for r in records]


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    config = RuntimeConfig(instance_id=sys.argv[1], batch_size=500, session_timeout_ms=6000)
    runner = StageRunner(Stage("copy", ["in"], copy), Settings(), JsonCodec(), config)
    runner.install_signal_handlers()
    runner.run()


if __name__ == "__main__":
    main()
