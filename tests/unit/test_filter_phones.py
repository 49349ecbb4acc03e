"""The filter's phone validity test agrees with ``phonenumbers.is_valid_number``: example
numbers of every region and type, and random digits under every calling code."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadstream.phones import is_valid_number, parse_plain
from leadstream_filter.fields import phone_e164
from tests.support.phones import TYPES, example_numbers, neighbours

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


@pytest.mark.parametrize("region", REGIONS)
def test_example_numbers_of_every_region(region: str) -> None:
    for example in example_numbers(region):
        assert is_valid_number(example) == phonenumbers.is_valid_number(example)
        for number in neighbours(example):  # one or two digits shorter / longer
            assert is_valid_number(number) == phonenumbers.is_valid_number(number)


@settings(max_examples=3000, deadline=None)
@given(
    st.sampled_from(CODES) | st.integers(0, 999),
    st.integers(0, 10**17),
    st.booleans(),
    st.none() | st.integers(0, 3),
)
def test_random_numbers(code: int, national: int, italian: bool, zeros: int | None) -> None:
    number = phonenumbers.PhoneNumber(country_code=code, national_number=national)
    if italian:
        number.italian_leading_zero = True
        number.number_of_leading_zeros = zeros
    assert is_valid_number(number) == phonenumbers.is_valid_number(number)


@settings(max_examples=2000, deadline=None)
@given(st.sampled_from(REGIONS), st.text("0123456789 +-()", min_size=5, max_size=18))
def test_parsed_text(region: str, text: str) -> None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return
    assert is_valid_number(number) == phonenumbers.is_valid_number(number)


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(REGIONS), st.sampled_from(TYPES), st.integers(-(10**6), 10**6))
def test_numbers_near_valid_ones(region: str, kind: int, delta: int) -> None:
    example = phonenumbers.example_number_for_type(region, kind)
    if example is None:
        return
    national = max(0, example.national_number + delta)
    number = phonenumbers.PhoneNumber(country_code=example.country_code, national_number=national)
    assert is_valid_number(number) == phonenumbers.is_valid_number(number)


# --- parse_plain / phone_e164: the shortcut past phonenumbers.parse --------------------------

PARSE_REGIONS = [*REGIONS, "ZZ", "001"]  # an unknown default region too
FORMATS = [
    phonenumbers.PhoneNumberFormat.E164,
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.NATIONAL,
    phonenumbers.PhoneNumberFormat.RFC3966,
]


def reference_e164(text: str, region: str, strict: bool) -> str | None:
    """phone_e164 as it was before the shortcut: phonenumbers only."""
    text = text.strip()
    if not text or sum(ch.isdigit() for ch in text) < 5:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    check = phonenumbers.is_valid_number if strict else phonenumbers.is_possible_number
    if not check(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_text(text: str, region: str) -> None:
    """parse_plain agrees with phonenumbers.parse, and phone_e164 with the reference."""
    parsed = parse_plain(text, region)
    if parsed is not False:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            assert parsed is None, (text, region)
        else:
            expected = (number.country_code, phonenumbers.national_significant_number(number))
            assert parsed == expected, (text, region)
    for strict in (True, False):
        got = phone_e164.__wrapped__(text, region, strict)
        assert got == reference_e164(text, region, strict), (text, region, strict)


def texts_of(number: phonenumbers.PhoneNumber, region: str) -> list[str]:
    out = [phonenumbers.format_number(number, fmt) for fmt in FORMATS]
    e164 = out[0]
    out += [e164[1:], "+0" + e164[1:], "00" + e164[1:], "011" + e164[1:], "+ (" + e164[1:4] +
            ") " + e164[4:], " " + e164 + " "]  # fmt: skip
    return out


@pytest.mark.parametrize("region", REGIONS)
def test_shortcut_on_example_numbers_of_every_region(region: str) -> None:
    for example in example_numbers(region):
        for number in neighbours(example, (0, 1, 2)):  # as is, one or two digits shorter / longer
            number.italian_leading_zero = example.italian_leading_zero
            number.number_of_leading_zeros = example.number_of_leading_zeros
            for text in texts_of(number, region):
                for default in (region, "ZZ"):
                    check_text(text, default)
        # the shortcut does answer for the usual shapes
        e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        assert parse_plain(e164, region) not in (False, None)


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(PARSE_REGIONS), st.text("0123456789 +-().", min_size=0, max_size=22))
def test_shortcut_on_random_text(region: str, text: str) -> None:
    check_text(text, region)


@settings(max_examples=3000, deadline=None)
@given(
    st.sampled_from(PARSE_REGIONS),
    st.sampled_from(["+", "", "0", "00", "+0", "(", "+ ("]),
    st.sampled_from(CODES) | st.integers(0, 999),
    st.text("0123456789", min_size=0, max_size=16),
    st.sampled_from(["", " ", "-", ") ", "."]),
)
def test_shortcut_on_calling_codes(region: str, lead: str, code: int, rest: str, sep: str) -> None:
    check_text(f"{lead}{code}{sep}{rest}", region)
    check_text(f"{lead}{rest}", region)


@settings(max_examples=2000, deadline=None)
@given(st.sampled_from(PARSE_REGIONS), st.sampled_from(TYPES), st.integers(-(10**5), 10**5),
       st.sampled_from(FORMATS))  # fmt: skip
def test_shortcut_near_valid_numbers(region: str, kind: int, delta: int, fmt: int) -> None:
    example = phonenumbers.example_number_for_type(region if region in REGIONS else "GB", kind)
    if example is None:
        return
    number = phonenumbers.PhoneNumber(
        country_code=example.country_code, national_number=max(0, example.national_number + delta)
    )
    for text in texts_of(number, region):
        check_text(text, region)
