"""A settable clock for code that takes a ``clock`` callable (seconds, monotonic-style)."""

from __future__ import annotations


class Clock:
    """Returns ``now``; tests move it forward by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
