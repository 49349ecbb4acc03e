"""A token bucket in Redis that every instance shares (one atomic Lua script per request).

The script refills the bucket from Redis's own clock, takes one token and, when the bucket is
empty, *reserves* the next free slot: it returns how long the caller must wait, and lets the
balance go negative so the next caller queues behind it. Callers then sleep exactly that long.
So N instances together send at most ``burst + rate × t`` requests in any ``t`` seconds,
in arrival order, with one round trip each and no polling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from redis import Redis

_RESERVE = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
tokens = tokens - cost
local wait = 0
if tokens < 0 then
  wait = -tokens / rate
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', key, math.ceil((burst - tokens) / rate * 1000) + 60000)
return tostring(wait)
"""


class RateLimiter(Protocol):
    """Paces requests. ``acquire`` blocks until one request may be sent; ``penalize`` holds
    everyone back (the server answered 429)."""

    def acquire(self) -> float: ...

    def penalize(self, seconds: float) -> None: ...


class Unlimited:
    """No pacing (tests of other things; a fake server without limits)."""

    def acquire(self) -> float:
        return 0.0

    def penalize(self, seconds: float) -> None:
        return None


class RedisTokenBucket:
    """``rate_per_s`` requests per second with bursts of ``burst``, shared through ``key``."""

    def __init__(
        self,
        redis: Redis,
        key: str,
        *,
        rate_per_s: float,
        burst: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be positive and burst at least 1")
        self.redis = redis
        self.key = key
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._sleep = sleep
        self._script = redis.register_script(_RESERVE)

    def reserve(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; the seconds to wait before using them."""
        raw = self._script(keys=[self.key], args=[self.rate_per_s, self.burst, cost])
        return float(raw.decode() if isinstance(raw, bytes) else raw)

    def acquire(self) -> float:
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def penalize(self, seconds: float) -> None:
        """Push every instance's next slot back by about ``seconds``."""
        if seconds > 0:
            self.reserve(seconds * self.rate_per_s)
