"""Exponential backoff with full jitter."""

from __future__ import annotations

import random


def backoff_delay(
    attempt: int, *, base_s: float = 0.5, cap_s: float = 30.0, rng: random.Random | None = None
) -> float:
    """Delay before retry number ``attempt`` (1-based): uniform in [cap/2, cap] of base*2^(n-1).

    Half-jitter keeps retries of many instances apart without ever retrying immediately.
    """
    ceiling = min(cap_s, base_s * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(ceiling / 2, ceiling)
