"""Faults a test can inject, and the rate limiter the fake enforces."""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass


@dataclass
class Fault:
    """Answer ``status`` (or stall ``delay_s``) to the next ``times`` matching requests.

    ``path`` is a regular expression searched in the path (``/api/campaigns``); ``query``, if
    set, must be contained in the query string (``page=2``). ``when="after"`` applies the request
    first and then answers the fault (an outcome the client cannot see)."""

    path: str
    status: int = 500
    times: int = 1
    method: str | None = None
    query: str | None = None
    retry_after: str | None = None
    delay_s: float = 0.0
    when: str = "before"
    hits: int = 0

    def matches(self, method: str, path: str, query: str) -> bool:
        if self.hits >= self.times:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        if self.query and self.query not in query:
            return False
        return re.search(self.path, path) is not None


class SlidingWindow:
    """At most ``limit`` accepted requests in any ``window_s`` (per key)."""

    def __init__(self, per_minute: float, window_s: float = 60.0) -> None:
        self.limit = max(1, int(per_minute * window_s / 60.0))
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}

    def check(self, key: str, now: float) -> float | None:
        """None: accepted (and counted); else seconds until a slot frees (for Retry-After)."""
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(1.0, math.ceil(hits[0] + self.window_s - now))
        hits.append(now)
        return None
