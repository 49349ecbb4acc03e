"""Facts about a domain that need no network: disposable providers and typo suggestions."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from functools import lru_cache

import disposable_email_domains

# Popular mailbox domains: a domain one or two keystrokes away from one of them is probably a
# typo (gmial.com → gmail.com). Short ones are listed so they are never "corrected" away, but
# are not suggested (too many real domains are one letter away from qq.com).
POPULAR: frozenset[str] = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.ca",
        "ymail.com", "hotmail.com", "hotmail.co.uk", "hotmail.fr", "outlook.com", "live.com",
        "live.co.uk", "msn.com", "aol.com", "icloud.com", "me.com", "mac.com", "protonmail.com",
        "proton.me", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "yandex.ru",
        "yandex.com", "mail.ru", "comcast.net", "verizon.net", "att.net", "sbcglobal.net",
        "bellsouth.net", "cox.net", "btinternet.com", "virginmedia.com", "sky.com",
        "orange.fr", "free.fr", "wanadoo.fr", "libero.it", "t-online.de", "qq.com", "163.com",
        "rocketmail.com", "zoho.com", "fastmail.com", "charter.net", "earthlink.net",
    }
)  # fmt: skip
_TARGETS = tuple(sorted(d for d in POPULAR if len(d) >= 8))
_TLD_TYPOS = {
    "con": "com", "cmo": "com", "cim": "com", "vom": "com", "xom": "com", "comm": "com",
    "ocm": "com", "cpm": "com", "coom": "com", "om": "com", "colm": "com",
    "nte": "net", "ner": "net", "nett": "net", "ogr": "org", "orgg": "org", "prg": "org",
}  # fmt: skip


class DisposableDomains:
    """The ``disposable-email-domains`` block list (minus its allow list), with its version."""

    def __init__(self, blocklist: Iterable[str] | None = None, version: str | None = None) -> None:
        if blocklist is None:
            blocked = set(disposable_email_domains.blocklist)
            blocked -= set(disposable_email_domains.allowlist)
            self.domains = frozenset(blocked)
            self.version = version or importlib.metadata.version("disposable-email-domains")
        else:
            self.domains = frozenset(blocklist)
            self.version = version or "custom"

    def __contains__(self, domain: object) -> bool:
        if not isinstance(domain, str):
            return False
        labels = domain.split(".")
        return any(".".join(labels[i:]) in self.domains for i in range(len(labels) - 1))


def _distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (edits incl. adjacent swaps), capped at limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


@lru_cache(maxsize=65_536)
def suggest_domain(domain: str) -> str | None:
    """A likely intended domain for a misspelt one, else None."""
    if domain in POPULAR:
        return None
    limit = 1 if len(domain) < 10 else 2
    best: tuple[int, str] | None = None
    for target in _TARGETS:
        d = _distance(domain, target, limit)
        if d <= limit and (best is None or d < best[0]):
            best = (d, target)
    if best is not None:
        return best[1]
    head, _, tld = domain.rpartition(".")
    if head and tld in _TLD_TYPOS:
        return f"{head}.{_TLD_TYPOS[tld]}"
    return None


def suggest_email(email: str, domain: str) -> str | None:
    """``jane@gmail.com`` for ``jane@gmial.com``, else None."""
    fixed = suggest_domain(domain)
    if fixed is None:
        return None
    return f"{email.rpartition('@')[0]}@{fixed}"


__all__ = ["POPULAR", "DisposableDomains", "suggest_domain", "suggest_email"]
