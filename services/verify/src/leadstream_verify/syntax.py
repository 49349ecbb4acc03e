"""The syntax check of an already normalized address (a record from an older filter, or a
producer that bypassed it, must still not be called deliverable).

Same shape as the filter's: email-validator, with its domain verdict cached per domain and a
plain ASCII dot-atom local part checked by the regex email-validator uses for it.
"""

from __future__ import annotations

import re
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

_ATEXT = r"a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~"
_FAST = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@([a-z0-9.\-]+)\Z")


@lru_cache(maxsize=65_536)
def _domain_error(domain: str) -> str | None:
    try:
        validate_email(f"x@{domain}", check_deliverability=False, strict=True)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def syntax_error(email: str) -> str | None:
    """None when ``email`` is a valid address, else why not."""
    m = _FAST.match(email)
    if m is not None and len(email) <= 254 and email.index("@") <= 64 and "xn--" not in email:
        return _domain_error(m.group(1))
    try:
        validate_email(email, check_deliverability=False, allow_smtputf8=True, strict=True)
    except EmailNotValidError as exc:
        return str(exc)
    return None


__all__ = ["syntax_error"]
