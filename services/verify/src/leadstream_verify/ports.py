"""What the verify logic is handed: DNS (cached), the verdict store, an external verifier.

Adapters raise :class:`leadstream.runtime.RetryLater` for transient failures of the whole
batch (database down, DNS resolver unreachable).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple, Protocol

from leadstream_verify.mail import DomainMail
from leadstream_verify.verdict import ProviderOutcome


class VerificationRecord(NamedTuple):
    """One verdict to store on the contact row (a named tuple: one per record, built several
    times faster than a frozen dataclass)."""

    contact_id: str
    email_normalized: str
    domain: str
    email: str
    role_account: bool
    free_provider: bool
    raw_event_id: str
    job_id: str | None
    verdict: str
    reasons: tuple[str, ...]
    mx_host: str | None
    suggestion: str | None
    verifier: str
    disposable_list_version: str | None
    event_id: str


class MailLookup(Protocol):
    def lookup_many(self, domains: Collection[str]) -> Mapping[str, DomainMail]:
        """How each domain receives mail (every domain asked gets an answer)."""
        ...


class VerdictStore(Protocol):
    def record(self, rows: Sequence[VerificationRecord]) -> None:
        """Store verdicts idempotently (upsert by normalized email)."""
        ...


class EmailVerifier(Protocol):
    name: str

    def verify_many(self, emails: Collection[str]) -> Mapping[str, ProviderOutcome]:
        """An outcome for every email (inconclusive ones have ``verdict`` None)."""
        ...


__all__ = ["EmailVerifier", "MailLookup", "VerdictStore", "VerificationRecord"]
