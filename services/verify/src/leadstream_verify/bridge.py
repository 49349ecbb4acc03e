"""One event loop for the stage's async adapters (DNS, the external verifier), driven from the
synchronous handler: ``bridge.run(coro)``. Created by the app, closed at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class AsyncBridge:
    """Runs coroutines to completion on a private, long-lived event loop."""

    def __init__(self) -> None:
        self._runner = asyncio.Runner()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def close(self) -> None:
        self._runner.close()


__all__ = ["AsyncBridge"]
