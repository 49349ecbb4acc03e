"""Per-domain caches of :class:`DomainMail`: in process (TTL, bounded) and in Redis (shared
by every verify instance; optional: when Redis is down the stage goes on without it)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping

import redis

from leadstream_verify.mail import DomainMail

log = logging.getLogger(__name__)


class LocalCache:
    """A bounded in-process TTL cache; the oldest tenth is dropped when it is full."""

    def __init__(
        self, max_entries: int = 200_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._data: dict[str, tuple[float, DomainMail]] = {}

    def get(self, domain: str) -> DomainMail | None:
        hit = self._data.get(domain)
        if hit is None:
            return None
        if hit[0] <= self.clock():
            del self._data[domain]
            return None
        return hit[1]

    def put(self, domain: str, mail: DomainMail, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        if len(self._data) >= self.max_entries:
            for key in list(self._data)[: max(1, self.max_entries // 10)]:
                del self._data[key]
        self._data.pop(domain, None)
        self._data[domain] = (self.clock() + ttl_s, mail)

    def __len__(self) -> int:
        return len(self._data)


class RedisCache:
    """``<namespace><domain>`` → JSON with the absolute expiry, ``SET ... EX ttl``.

    One ``MGET`` per batch for the domains the local cache lacks, one pipelined write for the
    new answers. Errors are logged and the cache is skipped for ``retry_s``.
    """

    def __init__(
        self,
        client: redis.Redis,
        namespace: str = "leadstream:mx:",
        *,
        retry_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.retry_s = retry_s
        self.clock = clock
        self._down_until = 0.0

    @property
    def available(self) -> bool:
        return self.clock() >= self._down_until

    def get_many(self, domains: Iterable[str]) -> dict[str, DomainMail]:
        names = list(domains)
        if not names or not self.available:
            return {}
        try:
            raw = self.client.mget([self.namespace + d for d in names])
        except redis.RedisError as exc:
            self._failed(exc)
            return {}
        now = self.clock()
        out: dict[str, DomainMail] = {}
        for domain, item in zip(names, raw, strict=True):
            if item is None:
                continue
            try:
                data = json.loads(item)
                ttl = int(data["e"] - now)
                if ttl > 0:
                    out[domain] = DomainMail.from_json(data, ttl)
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring a malformed MX cache entry for %s", domain)
        return out

    def put_many(self, answers: Mapping[str, DomainMail]) -> None:
        if not answers or not self.available:
            return
        now = self.clock()
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for domain, mail in answers.items():
                    if mail.ttl_s > 0:
                        value = json.dumps({**mail.to_json(), "e": int(now + mail.ttl_s)})
                        pipe.set(self.namespace + domain, value, ex=mail.ttl_s)
                pipe.execute()
        except redis.RedisError as exc:
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        log.warning("Redis MX cache unavailable for %.0fs: %s", self.retry_s, exc)
        self._down_until = self.clock() + self.retry_s


__all__ = ["LocalCache", "RedisCache"]
