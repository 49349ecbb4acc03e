"""Verdicts, typo suggestions, disposable domains and the syntax check (pure)."""

from __future__ import annotations

import pytest

from leadstream_verify.domains import DisposableDomains, suggest_domain, suggest_email
from leadstream_verify.mail import DomainMail, MailStatus
from leadstream_verify.syntax import syntax_error
from leadstream_verify.verdict import Evidence, ProviderOutcome, Verdict, decide

MX = DomainMail(MailStatus.MX, "mx.example.com", 300)


def ev(mail: DomainMail | None = MX, **kw: object) -> Evidence:
    base: dict[str, object] = {
        "syntax_error": None,
        "mail": mail,
        "disposable": False,
        "role_account": False,
        "free_provider": False,
        "suggestion": None,
    }
    base.update(kw)
    return Evidence(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("evidence", "verdict", "reasons"),
    [
        (ev(), "deliverable", ("mx_found",)),
        (ev(free_provider=True), "deliverable", ("mx_found", "free_provider")),
        (ev(DomainMail(MailStatus.A, "x.example")), "risky", ("a_fallback",)),
        (ev(disposable=True), "risky", ("mx_found", "disposable")),
        (ev(role_account=True), "risky", ("mx_found", "role_account")),
        (ev(suggestion="j@gmail.com"), "risky", ("mx_found", "possible_typo")),
        (ev(DomainMail(MailStatus.NXDOMAIN)), "undeliverable", ("domain_not_found",)),
        (
            ev(DomainMail(MailStatus.NXDOMAIN), suggestion="j@gmail.com"),
            "undeliverable",
            ("domain_not_found", "possible_typo"),
        ),
        (ev(DomainMail(MailStatus.NULL_MX)), "undeliverable", ("null_mx",)),
        (ev(DomainMail(MailStatus.NO_MAIL)), "undeliverable", ("no_mx",)),
        (ev(DomainMail(MailStatus.TIMEOUT)), "unknown", ("dns_timeout",)),
        (ev(DomainMail(MailStatus.SERVFAIL), role_account=True), "unknown",
         ("dns_servfail", "role_account")),
        (ev(None, syntax_error="bad"), "undeliverable", ("invalid_syntax",)),
    ],
)  # fmt: skip
def test_builtin_verdicts(evidence: Evidence, verdict: str, reasons: tuple[str, ...]) -> None:
    d = decide(evidence)
    assert (d.verdict.value, d.reasons, d.verifier) == (verdict, reasons, "builtin")


SAFE = ProviderOutcome(Verdict.DELIVERABLE, ("mailbox_exists",))
INVALID = ProviderOutcome(Verdict.UNDELIVERABLE, ("mailbox_not_found",))
CATCH_ALL = ProviderOutcome(Verdict.RISKY, ("catch_all",))
DOWN = ProviderOutcome(None, ("provider_unavailable",))


@pytest.mark.parametrize(
    ("evidence", "verdict", "verifier", "reasons"),
    [
        (ev(provider=SAFE), "deliverable", "provider:reacher", ("mx_found", "mailbox_exists")),
        (ev(provider=INVALID), "undeliverable", "provider:reacher",
         ("mx_found", "mailbox_not_found")),
        (ev(provider=CATCH_ALL), "risky", "provider:reacher", ("mx_found", "catch_all")),
        (ev(role_account=True, provider=SAFE), "risky", "provider:reacher",
         ("mx_found", "role_account", "mailbox_exists")),
        (ev(DomainMail(MailStatus.A, "x"), provider=SAFE), "deliverable", "provider:reacher",
         ("a_fallback", "mailbox_exists")),
        (ev(DomainMail(MailStatus.TIMEOUT), provider=INVALID), "undeliverable", "provider:reacher",
         ("dns_timeout", "mailbox_not_found")),
        (ev(provider=DOWN), "deliverable", "builtin", ("mx_found", "provider_unavailable")),
    ],
)  # fmt: skip
def test_provider_verdicts(
    evidence: Evidence, verdict: str, verifier: str, reasons: tuple[str, ...]
) -> None:
    e = Evidence(*[getattr(evidence, f) for f in Evidence.__slots__][:-1], "reacher")
    d = decide(e)
    assert (d.verdict.value, d.verifier, d.reasons) == (verdict, verifier, reasons)


@pytest.mark.parametrize(
    ("domain", "suggestion"),
    [
        ("gmial.com", "gmail.com"),
        ("gmail.con", "gmail.com"),
        ("gamil.com", "gmail.com"),
        ("hotmial.com", "hotmail.com"),
        ("yahooo.com", "yahoo.com"),
        ("outlok.com", "outlook.com"),
        ("hotmail.co.uj", "hotmail.co.uk"),
        ("acme-insurance.con", "acme-insurance.com"),
        ("gmail.com", None),
        ("ymail.com", None),  # a real domain, not a typo of gmail.com
        ("mail.com", None),
        ("me.com", None),
        ("acme-insurance.com", None),
        ("gmx.de", None),
        ("qq.co", None),
    ],
)
def test_typo_suggestions(domain: str, suggestion: str | None) -> None:
    assert suggest_domain(domain) == suggestion


def test_suggest_email_keeps_the_local_part() -> None:
    assert suggest_email("jane.doe+x@gmial.com", "gmial.com") == "jane.doe+x@gmail.com"
    assert suggest_email("jane@acme.com", "acme.com") is None


def test_disposable_domains_from_the_package() -> None:
    domains = DisposableDomains()
    assert "mailinator.com" in domains
    assert "eu.mailinator.com" in domains  # subdomains too
    assert "gmail.com" not in domains
    assert domains.version.count(".") >= 1  # the package's version, e.g. 0.0.293
    custom = DisposableDomains(["temp.example"])
    assert "temp.example" in custom
    assert custom.version == "custom"


@pytest.mark.parametrize(
    ("email", "ok"),
    [
        ("jane@example.com", True),
        ("jane+x@xn--bcher-kva.de", True),
        ("用户@xn--fsqu00a.xn--4rr70v", True),
        ("jane@example", False),
        ("jane@host.test", False),
        ("jane..x@example.com", False),
        ("a" * 65 + "@example.com", False),
        ("jane@-bad.com", False),
    ],
)
def test_syntax(email: str, ok: bool) -> None:
    assert (syntax_error(email) is None) is ok
