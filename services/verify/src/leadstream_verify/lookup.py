"""The stage's :class:`~leadstream_verify.ports.MailLookup`: in-process cache → Redis → DNS.

Per batch: the distinct domains the local cache lacks are fetched from Redis in one ``MGET``;
those still missing are resolved concurrently (at most ``concurrency`` in flight) and written
back to both caches. A 1M-contact list over 20k domains costs about 20k DNS look-ups.

TTLs: a positive answer is kept for its DNS TTL clamped to ``[min_ttl_s, max_ttl_s]``; a
negative one (no such domain, no mail) for ``negative_ttl_s``; a failed one (timeout,
SERVFAIL) for ``unknown_ttl_s`` in process only. When every look-up of a batch fails
(``outage_min`` domains or more) the resolver itself is down: the batch is retried later
instead of calling thousands of contacts ``unknown``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping

from leadstream.runtime import RetryLater
from leadstream_verify.bridge import AsyncBridge
from leadstream_verify.cache import LocalCache, RedisCache
from leadstream_verify.mail import DomainMail
from leadstream_verify.resolver import DnsMailResolver


class CachedMailLookup:
    def __init__(
        self,
        resolver: DnsMailResolver,
        bridge: AsyncBridge,
        local: LocalCache,
        shared: RedisCache | None = None,
        *,
        concurrency: int = 200,
        min_ttl_s: int = 300,
        max_ttl_s: int = 86_400,
        unknown_ttl_s: int = 30,
        outage_min: int = 5,
    ) -> None:
        self.resolver = resolver
        self.bridge = bridge
        self.local = local
        self.shared = shared
        self.concurrency = concurrency
        self.min_ttl_s = min_ttl_s
        self.max_ttl_s = max_ttl_s
        self.unknown_ttl_s = unknown_ttl_s
        self.outage_min = outage_min
        self.resolved = 0  # DNS look-ups made (for metrics and tests)

    def lookup_many(self, domains: Collection[str]) -> Mapping[str, DomainMail]:
        found: dict[str, DomainMail] = {}
        missing: list[str] = []
        for d in dict.fromkeys(domains):
            hit = self.local.get(d)
            if hit is None:
                missing.append(d)
            else:
                found[d] = hit
        if missing and self.shared is not None:
            for d, mail in self.shared.get_many(missing).items():
                found[d] = mail
                self.local.put(d, mail, mail.ttl_s)
            missing = [d for d in missing if d not in found]
        if not missing:
            return found
        answers = self.bridge.run(self._resolve(missing))
        self.resolved += len(missing)
        if len(missing) >= self.outage_min and all(a.status.transient for a in answers.values()):
            raise RetryLater(f"DNS: all {len(missing)} look-ups failed; resolver unreachable?")
        shareable: dict[str, DomainMail] = {}
        for d, mail in answers.items():
            if mail.status.transient:
                mail = DomainMail(mail.status, None, self.unknown_ttl_s)
            elif mail.mx_host is not None:
                ttl = min(max(mail.ttl_s, self.min_ttl_s), self.max_ttl_s)
                mail = DomainMail(mail.status, mail.mx_host, ttl)
                shareable[d] = mail
            else:
                shareable[d] = mail
            self.local.put(d, mail, mail.ttl_s)
            found[d] = mail
        if self.shared is not None:
            self.shared.put_many(shareable)
        return found

    async def _resolve(self, domains: list[str]) -> dict[str, DomainMail]:
        gate = asyncio.Semaphore(self.concurrency)

        async def one(domain: str) -> DomainMail:
            async with gate:
                return await self.resolver.lookup(domain)

        results = await asyncio.gather(*(one(d) for d in domains))
        return dict(zip(domains, results, strict=True))


__all__ = ["CachedMailLookup"]
