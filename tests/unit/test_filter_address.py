"""Email normalization: the documented table (docs/normalization.md), and the fast path agreeing
with email-validator on generated addresses."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadstream.db.suppressions import parse_value
from leadstream_filter.address import AddressError, normalize_email

ACCEPTED = [
    # (submitted, email_normalized, display)
    ("jane.doe@example.com", "jane.doe@example.com", "jane.doe@example.com"),
    ("  Jane.Doe@Example.COM \t", "jane.doe@example.com", "Jane.Doe@example.com"),
    ('"Jane Doe" <Jane@Example.com>', "jane@example.com", "Jane@example.com"),
    ("Jane Doe <jane@example.com>", "jane@example.com", "jane@example.com"),
    ("<jane@example.com>", "jane@example.com", "jane@example.com"),
    ("mailto:Jane@example.com", "jane@example.com", "Jane@example.com"),
    ("jane@example.com.", "jane@example.com", "jane@example.com"),  # absolute DNS name
    ('"jane"@example.com', "jane@example.com", "jane@example.com"),  # needless quotes
    ("jane+tag@gmail.com", "jane+tag@gmail.com", "jane+tag@gmail.com"),  # plus tag kept
    ("JANE+Tag@GMAIL.com", "jane+tag@gmail.com", "JANE+Tag@gmail.com"),
    ("jane@bücher.de", "jane@xn--bcher-kva.de", "jane@xn--bcher-kva.de"),  # IDN → IDNA
    ("Jane@BÜCHER.DE", "jane@xn--bcher-kva.de", "Jane@xn--bcher-kva.de"),
    ("jane@xn--bcher-kva.de", "jane@xn--bcher-kva.de", "jane@xn--bcher-kva.de"),
    ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v", "用户@xn--fsqu00a.xn--4rr70v"),
    ("José@example.com", "josé@example.com", "José@example.com"),  # SMTPUTF8 local part
    ("ｊａｎｅ@example.com", "jane@example.com", "jane@example.com"),  # full-width folded
    ("jane\u200b@example.com", "jane@example.com", "jane@example.com"),  # zero-width dropped
    ("o'brien@example.ie", "o'brien@example.ie", "o'brien@example.ie"),
    ("a" * 64 + "@example.com", "a" * 64 + "@example.com", "a" * 64 + "@example.com"),
    ("jane@" + "a" * 63 + ".com", "jane@" + "a" * 63 + ".com", "jane@" + "a" * 63 + ".com"),
    ("x@x.io", "x@x.io", "x@x.io"),
]

REJECTED = [
    (None, "missing_email"),
    ("", "missing_email"),
    ("   ", "missing_email"),
    ("<>", "missing_email"),
    ("jane", "invalid_email"),
    ("jane@", "invalid_email"),
    ("@example.com", "invalid_email"),
    ("jane@@example.com", "invalid_email"),
    ("jane doe@example.com", "invalid_email"),
    ('"jane doe"@example.com', "invalid_email"),  # quoting that cannot be dropped
    ("jane..doe@example.com", "invalid_email"),
    (".jane@example.com", "invalid_email"),
    ("jane.@example.com", "invalid_email"),
    ("jane@example..com", "invalid_email"),
    ("jane@example.com..", "invalid_email"),
    ("jane@-example.com", "invalid_email"),
    ("jane@exa_mple.com", "invalid_email"),
    ("jane@example", "invalid_email"),  # no dot
    ("jane@localhost", "invalid_email"),
    ("jane@host.test", "invalid_email"),  # special-use names
    ("jane@host.invalid", "invalid_email"),
    ("jane@[192.0.2.1]", "invalid_email"),  # IP literal
    ("a" * 65 + "@example.com", "invalid_email"),  # local part > 64
    ("jane@" + "a" * 64 + ".com", "invalid_email"),  # label > 63
    ("j@" + ".".join(["a" * 60] * 5) + ".com", "invalid_email"),  # address > 254
    ("jane@example.123", "invalid_email"),  # numeric TLD
]


@pytest.mark.parametrize(("submitted", "normalized", "display"), ACCEPTED)
def test_accepted(submitted: str, normalized: str, display: str) -> None:
    address = normalize_email(submitted)
    assert (address.normalized, address.display) == (normalized, display)
    assert address.domain == normalized.rpartition("@")[2]


@pytest.mark.parametrize(("submitted", "reason"), REJECTED)
def test_rejected(submitted: str | None, reason: str) -> None:
    with pytest.raises(AddressError) as info:
        normalize_email(submitted)
    assert info.value.reason == reason
    assert info.value.detail


def test_smtputf8_can_be_refused() -> None:
    with pytest.raises(AddressError) as info:
        normalize_email("José@example.com", allow_smtputf8=False)
    assert info.value.reason == "invalid_email"
    assert normalize_email("jose@bücher.de", allow_smtputf8=False).domain == "xn--bcher-kva.de"


_LOCAL_CHARS = st.sampled_from(list("abcXYZ019.+-_'!#$%&*/=?^`{|}~\"(),:;<>@[] é"))
_DOMAINS = st.sampled_from(
    [
        "example.com", "EXAMPLE.com", "sub.example.co.uk", "x.io", "-bad.com", "bad-.com",
        "a..b.com", "b_c.com", "localhost", "host.test", "xn--bcher-kva.de", "example.123",
        "a" * 63 + ".com", "a" * 64 + ".com", ".".join(["a" * 62] * 4) + ".com", "1.2.3.4",
    ]
)  # fmt: skip


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(local=st.text(_LOCAL_CHARS, min_size=0, max_size=70), domain=_DOMAINS)
def test_fast_path_agrees_with_email_validator(local: str, domain: str) -> None:
    """Whatever path normalize_email takes, it accepts exactly what email-validator accepts
    (for addresses without display names or wrapping) and keys them the same."""
    text = f"{local}@{domain}"
    try:
        expected = validate_email(
            text, check_deliverability=False, allow_quoted_local=True, strict=True
        )
        ok = not expected.local_part.startswith('"')
    except EmailNotValidError:
        ok = False
    if text.strip() != text or text.endswith(".") or "<" in text or not local.strip():
        return  # unwrap() handles these on purpose before validation
    try:
        got = normalize_email(text)
    except AddressError:
        assert not ok, text
        return
    assert ok, text
    assert got.normalized == f"{expected.local_part.lower()}@{expected.ascii_domain}"


@pytest.mark.parametrize(
    "submitted",
    ["Jane.Doe@Example.COM", "jane@bücher.de", "JANE@BÜCHER.DE", "jane+x@gmail.com", "<a@b.io>"],
)
def test_suppression_entries_normalize_like_the_filter(submitted: str) -> None:
    kind, value = parse_value(submitted)
    assert kind == "email"
    assert value == normalize_email(submitted).normalized
