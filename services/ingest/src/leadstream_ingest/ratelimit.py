"""Per-client-IP rate limit of registrations, in Redis, one atomic Lua script per request.

The algorithm is GCRA (the "generic cell rate algorithm", a token bucket kept as a single
timestamp): ``limit`` requests per ``period`` sustained, at most ``burst`` back to back from
an idle client. It is a continuously sliding window — no window boundary where a client gets
twice its allowance. The only state is one key per client (the "theoretical arrival time"),
expiring when the client is idle again. :func:`gcra` is the decision in Python (unit-tested
by tables); :data:`SCRIPT` is the same arithmetic in Lua (tested against Redis with the same
tables), with the clock read from Redis ``TIME`` so every ingest instance shares one clock.

The script also marks the request id "pending" when it admits the request (one round trip
instead of two); the caller removes the mark if the request then fails. Requests that arrive
together are decided by one script run (see :class:`RateLimiter`): still one atomic script,
now over several clients, in arrival order.

Redis unreachable or slower than ``timeout_s``: fail open (the default) or closed
(:class:`~leadstream_ingest.errors.Unavailable`, 503), per settings. "Open" is never
"unlimited": the same policy is then enforced in memory, per process (:class:`LocalBuckets`),
so a client gets at most its allowance per ingest instance while Redis is away — and a flood
that makes Redis answers late cannot switch the limit off. The memory buckets follow every
answer Redis gives, so they take over where Redis left off: a client refused a moment ago
stays refused, and one ingest instance never grants a client more than its allowance, Redis
or not (several instances: at most its allowance per instance while Redis is away). After a
failure Redis is not asked again for ``retry_s``, so an outage costs one timeout, not one per
request.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from leadstream.errors import ConfigError, LeadStreamError
from leadstream_ingest.errors import Unavailable

log = logging.getLogger(__name__)
_EPS = 1e-9

SCRIPT = """
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local ttl_pending = tonumber(ARGV[4])
local now
if ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local out = {}
for i = 1, #KEYS, 2 do
  local tat = tonumber(redis.call('GET', KEYS[i]))
  if tat == nil or tat < now then tat = now end
  if tat - now > tolerance + 1e-9 then
    table.insert(out, 0)
    table.insert(out, string.format('%.3f', tat - tolerance - now))
    table.insert(out, 0)
  else
    local new_tat = tat + interval
    local ttl = math.max(1, math.ceil(new_tat - now))
    redis.call('SET', KEYS[i], string.format('%.3f', new_tat), 'PX', ttl)
    if KEYS[i + 1] ~= '' then
      redis.call('SET', KEYS[i + 1], '1', 'EX', ttl_pending)
    end
    local remaining = math.floor((tolerance - (new_tat - now)) / interval + 1e-9) + 1
    if remaining < 0 then remaining = 0 end
    table.insert(out, 1)
    table.insert(out, '0')
    table.insert(out, remaining)
  end
end
return out
"""


class RateLimited(LeadStreamError):
    """The client is over its limit; it may retry after ``retry_after_s`` seconds."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"rate limited; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class RatePolicy:
    limit: int
    period_s: float
    burst: int

    def __post_init__(self) -> None:
        if self.limit < 1 or self.burst < 1 or self.period_s <= 0:
            raise ConfigError("a rate limit needs limit >= 1, burst >= 1 and period > 0")

    @property
    def interval_ms(self) -> float:
        """Time one request "costs"."""
        return self.period_s * 1000 / self.limit

    @property
    def tolerance_ms(self) -> float:
        """How far ahead of now a client's arrival time may run (the burst)."""
        return self.interval_ms * (self.burst - 1)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_s: float = 0.0
    remaining: int = 0
    degraded: bool = False  # decided without Redis (in this process's memory)

    @property
    def retry_after_header(self) -> int:
        """Whole seconds for ``Retry-After`` (rounded up, at least 1)."""
        return max(1, math.ceil(self.retry_after_s - _EPS))


def gcra(tat_ms: float | None, now_ms: float, policy: RatePolicy) -> tuple[Decision, float | None]:
    """The decision for a request at ``now_ms`` given the stored arrival time (None: idle),
    and the arrival time to store (None: unchanged, the request is refused)."""
    interval, tolerance = policy.interval_ms, policy.tolerance_ms
    tat = now_ms if tat_ms is None or tat_ms < now_ms else tat_ms
    if tat - now_ms > tolerance + _EPS:
        return Decision(False, (tat - tolerance - now_ms) / 1000), None
    new_tat = tat + interval
    remaining = max(0, math.floor((tolerance - (new_tat - now_ms)) / interval + _EPS) + 1)
    return Decision(True, 0.0, remaining), new_tat


class TrustedProxies(Sequence[str]):
    """The configured proxies (addresses or CIDR networks) as a sequence whose ``in`` tests
    network membership, so ``client_ip(scope, TrustedProxies(...))`` honours CIDRs."""

    def __init__(self, entries: Sequence[str]) -> None:
        self._entries = tuple(entries)
        try:
            self._networks = tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries)
        except ValueError as exc:
            raise ConfigError(f"trusted_proxies: {exc}") from None
        self._seen: dict[str, bool] = {}

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str) or not self._networks:
            return False
        known = self._seen.get(value)
        if known is None:
            known = self._seen[value] = self._match(value)
            if len(self._seen) > 4096:  # peers are few (proxies), forwarded hops are not
                self._seen.clear()
        return known

    def _match(self, value: str) -> bool:
        try:
            address = ipaddress.ip_address(value.strip())
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in net for net in self._networks)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._entries[index]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)


@functools.lru_cache(maxsize=4096)  # parsing the address cost more than the rest of admit
def client_bucket(ip: str | None, ipv6_prefix: int = 64) -> str:
    """Whose allowance a request spends: the IPv4 address, or the IPv6 network (one host
    usually holds a whole /64, so limiting single IPv6 addresses limits nothing)."""
    if not ip:
        return "unknown"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "raw:" + ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{ipv6_prefix}", strict=False))
    return str(address)


class LocalBuckets:
    """The policy in this process's memory: the fallback while Redis cannot answer.

    At most ``max_entries`` clients are remembered; past that, idle ones are forgotten, and
    if none is idle, all are (the limit then restarts, never blocks everyone)."""

    def __init__(self, policy: RatePolicy, max_entries: int = 100_000) -> None:
        self.policy = policy
        self.max_entries = max_entries
        self._tats: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._tats)

    def peek(self, bucket: str, now_ms: float) -> Decision:
        """Whether a request now would be allowed, without spending anything."""
        decision, _ = gcra(self._tats.get(bucket), now_ms, self.policy)
        return Decision(decision.allowed, decision.retry_after_s, decision.remaining, True)

    def decide(self, bucket: str, now_ms: float) -> Decision:
        decision, new_tat = gcra(self._tats.get(bucket), now_ms, self.policy)
        if new_tat is not None:
            self._set(bucket, new_tat, now_ms)
        return Decision(decision.allowed, decision.retry_after_s, decision.remaining, True)

    def follow(self, bucket: str, now_ms: float, allowed: bool, retry_after_s: float) -> None:
        """Mirror a decision Redis made: an admitted request is spent here too; a refusal
        moves the bucket to where Redis has it (``retry_after_s`` from now until the next
        request fits)."""
        if allowed:
            _, new_tat = gcra(self._tats.get(bucket), now_ms, self.policy)
            if new_tat is not None:
                self._set(bucket, new_tat, now_ms)
        else:
            tat = now_ms + self.policy.tolerance_ms + retry_after_s * 1000
            if tat > self._tats.get(bucket, 0.0):
                self._set(bucket, tat, now_ms)

    def _set(self, bucket: str, tat: float, now_ms: float) -> None:
        if bucket not in self._tats and len(self._tats) >= self.max_entries:
            self._tats = {b: t for b, t in self._tats.items() if t > now_ms}
            if len(self._tats) >= self.max_entries:
                self._tats.clear()
        self._tats[bucket] = tat


class RateLimiter:
    """Admits or refuses a request of a client bucket (see the module docstring).

    Requests that arrive while a script call is in flight wait for the next one, which
    decides all of them in one atomic script run (one round trip per batch, not per request:
    redis-py costs ~250 µs of CPU per call here, which alone would cap a process near 4,000
    requests/s). Decisions within a batch are made in arrival order.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        policy: RatePolicy,
        *,
        key_prefix: str,
        timeout_s: float,
        fail_open: bool,
        retry_s: float = 1.0,
        max_batch: int = 256,
        pending_ttl_s: int = 60,
    ) -> None:
        self.policy = policy
        self.key_prefix = key_prefix
        self.timeout_s = timeout_s
        self.fail_open = fail_open
        self.retry_s = retry_s
        self.max_batch = max_batch
        self.failures = 0
        self.calls = 0
        self.local = LocalBuckets(policy)
        self._script = redis.register_script(SCRIPT)
        self._args: list[str | int] = [
            repr(policy.interval_ms),
            repr(policy.tolerance_ms),
            "",
            pending_ttl_s,
        ]
        self._queue: list[tuple[str, str, asyncio.Future[tuple[int, str, int]]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._skip_until = 0.0

    async def admit(self, bucket: str, *, pending_key: str | None = None) -> Decision:
        """The decision for one request now; ``pending_key`` is set (for ``pending_ttl_s``)
        when it is admitted.

        :class:`RateLimited` when refused; :class:`Unavailable` when Redis cannot answer and
        the limiter fails closed.
        """
        decision = await self._ask(bucket, pending_key or "")
        if not decision.allowed:
            raise RateLimited(decision.retry_after_header)
        return decision

    async def _ask(self, bucket: str, pending_key: str) -> Decision:
        if time.monotonic() < self._skip_until:
            return self._unavailable(bucket)
        future: asyncio.Future[tuple[int, str, int]] = asyncio.get_running_loop().create_future()
        self._queue.append((self.key_prefix + bucket, pending_key, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        try:
            allowed, retry_ms, remaining = await future
        except (RedisError, OSError, TimeoutError):
            return self._unavailable(bucket)
        decision = Decision(bool(allowed), float(retry_ms) / 1000, int(remaining))
        self.local.follow(bucket, time.time() * 1000, decision.allowed, decision.retry_after_s)
        return decision

    async def _flush(self) -> None:
        """Run the script for everything queued, batch after batch, until the queue is empty."""
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            keys = [k for rate_key, pending_key, _ in batch for k in (rate_key, pending_key)]
            try:
                async with asyncio.timeout(self.timeout_s):
                    flat = await self._script(keys=keys, args=self._args)
                self.calls += 1
            except (RedisError, OSError, TimeoutError) as exc:
                self._skip_until = time.monotonic() + self.retry_s
                log.warning(
                    "rate limiter: Redis unavailable (%s: %s); %s for %.1f s",
                    type(exc).__name__,
                    exc,
                    "limiting in this process's memory" if self.fail_open else "answering 503",
                    self.retry_s,
                )
                batch, self._queue = batch + self._queue, []  # the waiting ones too
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
            for i, (_, _, future) in enumerate(batch):
                if not future.done():
                    future.set_result((int(flat[3 * i]), flat[3 * i + 1], int(flat[3 * i + 2])))

    def _unavailable(self, bucket: str) -> Decision:
        self.failures += 1
        if self.fail_open:
            return self.local.decide(bucket, time.time() * 1000)
        raise Unavailable(
            "rate limiting is unavailable; retry later", code="rate_limiter_unavailable"
        )
