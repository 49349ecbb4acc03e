"""MX look-ups over DNS with dnspython's async resolver.

A domain's mail goes to its most preferred MX; without MX records to the domain itself when it
has an A/AAAA record (RFC 5321 §5.1). Timeouts and SERVFAIL are retried with exponential
backoff and jitter; after the last attempt the answer is ``timeout``/``servfail`` (the verdict
says ``unknown``), never an exception.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
from dns.rdtypes.ANY.MX import MX

from leadstream_verify.mail import DomainMail, MailStatus


def nameserver(spec: str) -> dns.nameserver.Do53Nameserver:
    """``1.2.3.4``, ``1.2.3.4:5353`` or ``[::1]:5353`` → a UDP/TCP nameserver."""
    host, port = spec, 53
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif spec.count(":") == 1:
        host, _, p = spec.partition(":")
        port = int(p)
    return dns.nameserver.Do53Nameserver(host, port)


class DnsMailResolver:
    """Finds how a domain receives mail."""

    def __init__(
        self,
        nameservers: Sequence[str] = (),
        *,
        timeout_s: float = 2.0,
        attempts: int = 3,
        backoff_s: float = 0.2,
        negative_ttl_s: int = 900,
        rng: random.Random | None = None,
    ) -> None:
        self.resolver = dns.asyncresolver.Resolver(configure=not nameservers)
        if nameservers:
            self.resolver.nameservers = [nameserver(n) for n in nameservers]
        self.resolver.cache = None  # we cache per domain, with our own TTL policy
        self.resolver.timeout = timeout_s
        self.resolver.lifetime = timeout_s
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.negative_ttl_s = negative_ttl_s
        self.rng = rng or random.Random()

    async def lookup(self, domain: str) -> DomainMail:
        """MX, else A/AAAA; retried on timeout/SERVFAIL; never raises for DNS failures."""
        status = MailStatus.TIMEOUT
        for attempt in range(1, self.attempts + 1):
            try:
                return await self._once(domain)
            except dns.resolver.NoNameservers:
                status = MailStatus.SERVFAIL
            except dns.exception.Timeout:
                status = MailStatus.TIMEOUT
            if attempt < self.attempts:
                ceiling = self.backoff_s * 2 ** (attempt - 1)
                await asyncio.sleep(self.rng.uniform(ceiling / 2, ceiling))
        return DomainMail(status)

    async def _once(self, domain: str) -> DomainMail:
        try:
            answer = await self.resolver.resolve(domain, "MX", raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return DomainMail(MailStatus.NXDOMAIN, ttl_s=self.negative_ttl_s)
        except (dns.resolver.YXDOMAIN, dns.name.NameTooLong, dns.name.EmptyLabel):
            return DomainMail(MailStatus.NXDOMAIN, ttl_s=self.negative_ttl_s)
        if answer.rrset is not None and len(answer.rrset) > 0:
            records = sorted(
                (r for r in answer.rrset if isinstance(r, MX)), key=lambda r: r.preference
            )
            usable = [r for r in records if r.exchange != dns.name.root]
            if not usable:
                return DomainMail(MailStatus.NULL_MX, ttl_s=answer.rrset.ttl)
            host = usable[0].exchange.to_text(omit_final_dot=True).lower()
            return DomainMail(MailStatus.MX, host, answer.rrset.ttl)
        for rdtype in ("A", "AAAA"):
            addr = await self.resolver.resolve(domain, rdtype, raise_on_no_answer=False)
            if addr.rrset is not None and len(addr.rrset) > 0:
                return DomainMail(MailStatus.A, domain, addr.rrset.ttl)
        return DomainMail(MailStatus.NO_MAIL, ttl_s=self.negative_ttl_s)


__all__ = ["DnsMailResolver", "nameserver"]
