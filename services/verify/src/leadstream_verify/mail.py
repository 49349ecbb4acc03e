"""What DNS says about a domain's mail: the result type shared by resolver, caches and logic."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MailStatus(StrEnum):
    """How a domain receives mail."""

    MX = "mx"  # MX records
    A = "a"  # no MX, an A/AAAA record: the implicit MX of RFC 5321 §5.1
    NULL_MX = "null_mx"  # "MX 0 ." (RFC 7505): the domain accepts no mail
    NO_MAIL = "no_mail"  # the name exists with neither MX nor address records
    NXDOMAIN = "nxdomain"  # the domain does not exist
    TIMEOUT = "timeout"  # no answer after every retry
    SERVFAIL = "servfail"  # the resolver failed after every retry

    @property
    def transient(self) -> bool:
        """Not an answer about the domain: worth asking again later."""
        return self in (MailStatus.TIMEOUT, MailStatus.SERVFAIL)


@dataclass(frozen=True, slots=True)
class DomainMail:
    """One domain's mail setup; ``ttl_s`` is how long the answer may be cached."""

    status: MailStatus
    mx_host: str | None = None
    ttl_s: int = 0

    def to_json(self) -> dict[str, object]:
        return {"s": self.status.value, "h": self.mx_host}

    @classmethod
    def from_json(cls, data: dict[str, object], ttl_s: int) -> DomainMail:
        host = data.get("h")
        return cls(MailStatus(str(data["s"])), str(host) if host else None, ttl_s)


__all__ = ["DomainMail", "MailStatus"]
