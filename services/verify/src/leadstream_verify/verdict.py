"""The verdict: ``deliverable | risky | undeliverable | unknown`` with the reasons behind it.

The categories follow what commercial verifiers report (Reacher's safe/risky/invalid/unknown,
Kickbox's deliverable/risky/undeliverable/unknown). docs/verification.md has the full table:

- syntax fails → undeliverable ``invalid_syntax``; no such domain → ``domain_not_found``;
  null MX → ``null_mx``; neither MX nor A/AAAA → ``no_mx``;
- DNS timed out / SERVFAIL after retries → unknown ``dns_timeout`` / ``dns_servfail``;
- MX found → deliverable ``mx_found``; only an A record → risky ``a_fallback``;
- ``disposable``, ``role_account``, ``possible_typo`` make a deliverable address risky;
  ``free_provider`` is information only;
- a conclusive external verifier decides (``mailbox_not_found``, ``catch_all`` ...), but never
  better than risky for the three flags above; an inconclusive one leaves the built-in verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from leadstream_verify.mail import DomainMail, MailStatus


class Verdict(StrEnum):
    DELIVERABLE = "deliverable"
    RISKY = "risky"
    UNDELIVERABLE = "undeliverable"
    UNKNOWN = "unknown"


_SEVERITY = {Verdict.DELIVERABLE: 0, Verdict.RISKY: 1, Verdict.UNDELIVERABLE: 2}
_FLAGS = frozenset({"disposable", "role_account", "possible_typo"})
BUILTIN = "builtin"

_DNS: dict[MailStatus, tuple[Verdict, str]] = {
    MailStatus.MX: (Verdict.DELIVERABLE, "mx_found"),
    MailStatus.A: (Verdict.RISKY, "a_fallback"),
    MailStatus.NULL_MX: (Verdict.UNDELIVERABLE, "null_mx"),
    MailStatus.NO_MAIL: (Verdict.UNDELIVERABLE, "no_mx"),
    MailStatus.NXDOMAIN: (Verdict.UNDELIVERABLE, "domain_not_found"),
    MailStatus.TIMEOUT: (Verdict.UNKNOWN, "dns_timeout"),
    MailStatus.SERVFAIL: (Verdict.UNKNOWN, "dns_servfail"),
}


@dataclass(frozen=True, slots=True)
class ProviderOutcome:
    """An external verifier's answer: ``verdict`` None when inconclusive or not obtained."""

    verdict: Verdict | None
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything the verdict is decided from."""

    syntax_error: str | None
    mail: DomainMail | None
    disposable: bool
    role_account: bool
    free_provider: bool
    suggestion: str | None
    provider: ProviderOutcome | None = None
    provider_name: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...]
    verifier: str


def worst(a: Verdict, b: Verdict) -> Verdict:
    """The more severe of two conclusive verdicts."""
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


def builtin(e: Evidence) -> tuple[Verdict, list[str]]:
    """The verdict from syntax, DNS and the domain lists alone."""
    if e.syntax_error is not None or e.mail is None:
        return Verdict.UNDELIVERABLE, ["invalid_syntax"]
    verdict, reason = _DNS[e.mail.status]
    reasons = [reason]
    flags = [
        name
        for name, on in (
            ("disposable", e.disposable),
            ("role_account", e.role_account),
            ("possible_typo", e.suggestion is not None),
        )
        if on
    ]
    reasons += flags
    if e.free_provider:
        reasons.append("free_provider")
    if flags and verdict is Verdict.DELIVERABLE:
        verdict = Verdict.RISKY
    return verdict, reasons


def decide(e: Evidence) -> Decision:
    """The verdict, its reasons (most important first) and who decided.

    The external verifier (consulted only when the built-in verdict is not undeliverable)
    decides when it is conclusive, except that it cannot make a disposable domain, a role
    account or a likely typo better than risky."""
    verdict, reasons = builtin(e)
    if e.provider is None:
        return Decision(verdict, tuple(reasons), BUILTIN)
    reasons += [r for r in e.provider.reasons if r not in reasons]
    if e.provider.verdict is None:
        return Decision(verdict, tuple(reasons), BUILTIN)
    final = e.provider.verdict
    if final is not Verdict.UNKNOWN and any(r in _FLAGS for r in reasons):
        final = worst(final, Verdict.RISKY)
    return Decision(final, tuple(reasons), f"provider:{e.provider_name or 'external'}")


__all__ = ["BUILTIN", "Decision", "Evidence", "ProviderOutcome", "Verdict", "builtin", "decide"]
