"""Email address normalization (see docs/normalization.md for the table of cases).

The syntax check is email-validator's (no DNS here). Because it spends most of its time on
the domain (UTS-46 tables, IDNA), and a list of a million contacts has a few thousand
domains, the common case takes a fast path with the same result: a plain ASCII dot-atom local
part is checked by the regex email-validator itself uses for it, and the domain by
email-validator on ``x@<domain>``, cached per domain. Anything else (quotes, Unicode, punycode
labels, display names, odd lengths) goes through email-validator whole.
``tests/unit/test_filter_address.py`` checks that both paths agree on generated addresses.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import NamedTuple

from email_validator import EmailNotValidError, validate_email

from leadstream.errors import LeadStreamError

LOCAL_MAX = 64
EMAIL_MAX = 254
_ATEXT = r"a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~"
_FAST = re.compile(rf"([{_ATEXT}]+(?:\.[{_ATEXT}]+)*)@([A-Za-z0-9.\-]+)\Z")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff"))  # never meaningful in an address


class AddressError(LeadStreamError):
    """The address cannot be used; ``reason`` is the rejection code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Address(NamedTuple):
    """A normalized address (a named tuple: one per record, built several times faster than a
    frozen dataclass).

    ``normalized`` is the de-duplication key and partition key: the local part lower-cased,
    ``@``, the domain lower-cased and IDNA-encoded. ``display`` keeps the local part's case.
    """

    normalized: str
    display: str
    local: str
    domain: str
    smtputf8: bool


@lru_cache(maxsize=65_536)
def ascii_domain(domain: str) -> str | None:
    """The IDNA (ASCII) form of ``domain`` if email-validator accepts it as a mail domain,
    else None. Cached: a batch has few distinct domains."""
    try:
        result = validate_email(f"x@{domain}", check_deliverability=False, strict=True)
    except EmailNotValidError:
        return None
    return str(result.ascii_domain).lower()


def _domain_error(domain: str) -> str:
    try:
        validate_email(f"x@{domain}", check_deliverability=False, strict=True)
    except EmailNotValidError as exc:
        return str(exc)
    return "invalid domain"  # pragma: no cover - only called after a rejection


def unwrap(raw: str) -> str:
    """Trim, drop invisible characters, fold full-width ASCII, drop a ``mailto:`` prefix, a
    display name and angle brackets, and one trailing dot of the domain (an absolute DNS name
    is the same domain)."""
    text = raw.translate(_INVISIBLE).strip()
    if not text.isascii():
        folded = unicodedata.normalize("NFKC", text)
        if folded.isascii():  # full-width forms typed with an East Asian input method
            text = folded
    if text.endswith(">") and "<" in text:
        text = text[text.rindex("<") + 1 : -1].strip()
    if text[:7].lower() == "mailto:":
        text = text[7:].strip()
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    return text


def normalize_email(raw: str | None, *, allow_smtputf8: bool = True) -> Address:
    """Normalize one submitted address or raise :class:`AddressError`
    (``missing_email`` / ``invalid_email``)."""
    if raw is None or not raw.strip():
        raise AddressError("missing_email", "no email address")
    text = unwrap(raw)
    if not text:
        raise AddressError("missing_email", "no email address")
    m = _FAST.match(text)
    if m is not None and len(m.group(1)) <= LOCAL_MAX and "xn--" not in text.lower():
        local, domain = m.group(1), m.group(2)
        ascii_dom = ascii_domain(domain.lower())
        if ascii_dom is None:
            raise AddressError("invalid_email", _domain_error(domain.lower()))
        if len(local) + 1 + len(ascii_dom) > EMAIL_MAX:
            raise AddressError("invalid_email", "The email address is too long.")
        return Address(
            f"{local.lower()}@{ascii_dom}", f"{local}@{ascii_dom}", local, ascii_dom, False
        )
    return _slow(text, allow_smtputf8=allow_smtputf8)


def _slow(text: str, *, allow_smtputf8: bool) -> Address:
    try:
        result = validate_email(
            text,
            check_deliverability=False,
            allow_smtputf8=allow_smtputf8,
            allow_quoted_local=True,
            allow_display_name=False,
            allow_domain_literal=False,
            strict=True,
        )
    except EmailNotValidError as exc:
        raise AddressError("invalid_email", str(exc)) from None
    local = str(result.local_part)
    if local.startswith('"'):
        # Quoting that email-validator could not drop (spaces, specials): valid RFC 5322,
        # refused by most mailbox providers and sending platforms.
        raise AddressError("invalid_email", "quoted local part with special characters")
    domain = str(result.ascii_domain).lower()
    return Address(
        f"{local.lower()}@{domain}", f"{local}@{domain}", local, domain, bool(result.smtputf8)
    )


__all__ = ["Address", "AddressError", "ascii_domain", "normalize_email", "unwrap"]
