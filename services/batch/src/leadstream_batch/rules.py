"""Rules and caps read from PostgreSQL, cached for a few seconds (a rule added with the CLI
applies within ``batch_rules_refresh_s``, without a restart)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Refreshing(Generic[T]):
    """A value re-loaded when older than ``refresh_s`` (0: on every call)."""

    def __init__(
        self,
        load: Callable[[], T],
        refresh_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._refresh_s = refresh_s
        self._clock = clock
        self._value: T | None = None
        self._at = 0.0

    def get(self) -> T:
        now = self._clock()
        if self._value is None or now - self._at >= self._refresh_s:
            self._value = self._load()
            self._at = now
        return self._value


RulesSource = Callable[[], Sequence[object]]
CapsSource = Callable[[], Mapping[str, int]]
