"""What the filter refuses besides bad syntax: blocked domains and TLDs, and (by policy) role
accounts and free providers, which are otherwise passed with a flag."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from leadstream_filter.address import Address
from leadstream_filter.lists import FREE_PROVIDERS, ROLE_ACCOUNTS, role_key


@dataclass(frozen=True, slots=True)
class Rejection:
    """A business rejection: the reason code (also the ``reason`` header) and a detail."""

    reason: str
    detail: str


class Screening(NamedTuple):
    """The flags of an address, and the rejection when policy refuses it (a named tuple: one
    per record)."""

    role_account: bool
    free_provider: bool
    rejection: Rejection | None


def parents(domain: str) -> Iterator[str]:
    """``a.b.c.com`` → ``a.b.c.com``, ``b.c.com``, ``c.com`` (never a bare TLD)."""
    labels = domain.split(".")
    for i in range(len(labels) - 1):
        yield ".".join(labels[i:])


@dataclass(frozen=True)
class Policy:
    """The filter's rules; built from :class:`~leadstream_filter.config.FilterSettings`."""

    role_accounts: frozenset[str] = ROLE_ACCOUNTS
    free_providers: frozenset[str] = FREE_PROVIDERS
    reject_role_accounts: bool = False
    reject_free_providers: bool = False
    blocked_domains: frozenset[str] = frozenset()
    blocked_tlds: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        *,
        role_accounts: Iterable[str] = ROLE_ACCOUNTS,
        free_providers: Iterable[str] = FREE_PROVIDERS,
        reject_role_accounts: bool = False,
        reject_free_providers: bool = False,
        blocked_domains: Iterable[str] = (),
        blocked_tlds: Iterable[str] = (),
    ) -> Policy:
        """A policy with every list lower-cased (and TLDs without a leading dot)."""
        return cls(
            frozenset(r.strip().lower() for r in role_accounts),
            frozenset(d.strip().lower().rstrip(".") for d in free_providers),
            reject_role_accounts,
            reject_free_providers,
            frozenset(d.strip().lower().strip(".") for d in blocked_domains),
            frozenset(t.strip().lower().strip(".") for t in blocked_tlds),
        )

    def screen(self, address: Address, suppressed: Rejection | None = None) -> Screening:
        """Flags and (maybe) the rejection of one normalized address; ``suppressed`` is the
        suppression list's verdict. First match wins: blocked domain, suppression, role
        account, free provider."""
        domain = address.domain
        role = role_key(address.local) in self.role_accounts
        free = domain in self.free_providers
        rejection = self.blocked(domain) or suppressed
        if rejection is None and role and self.reject_role_accounts:
            rejection = Rejection("role_account", f"role account {role_key(address.local)}@")
        if rejection is None and free and self.reject_free_providers:
            rejection = Rejection("free_provider", f"free mailbox provider {domain}")
        return Screening(role, free, rejection)

    def blocked(self, domain: str) -> Rejection | None:
        """``blocked_domain`` when the TLD, the domain or a parent domain is blocked."""
        tld = domain.rsplit(".", 1)[-1]
        if tld in self.blocked_tlds:
            return Rejection("blocked_domain", f"top-level domain .{tld} is blocked")
        if self.blocked_domains:
            for d in parents(domain):
                if d in self.blocked_domains:
                    return Rejection("blocked_domain", f"domain {d} is blocked")
        return None


__all__ = ["Policy", "Rejection", "Screening", "parents"]
