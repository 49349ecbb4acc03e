"""Runs the counter (the stage runtime's blocking loop) in a thread beside the faust app."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import mode

from leadstream.runtime import StageRunner

log = logging.getLogger(__name__)


class CounterService(mode.Service):
    """Starts the counter's loop with the worker; on stop it finishes and commits the batch
    in hand. If the loop dies, the worker is stopped: the process exits and is restarted."""

    def __init__(self, runner: StageRunner, **kwargs: Any) -> None:
        self.runner = runner
        self._thread: threading.Thread | None = None
        self._stopping = False
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        loop = asyncio.get_running_loop()

        def run() -> None:
            error: BaseException | None = None
            try:
                self.runner.run()
            except BaseException as exc:
                log.exception("the counter loop failed")
                error = exc
            if not self._stopping:
                reason = error or RuntimeError("the counter loop stopped")
                asyncio.run_coroutine_threadsafe(self.crash(reason), loop)

        self._thread = threading.Thread(target=run, name="jobs-counter", daemon=True)
        self._thread.start()

    async def on_stop(self) -> None:
        self._stopping = True
        self.runner.stop()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 60.0)
            if self._thread.is_alive():
                log.warning("the counter loop did not stop within 60s")
