"""The filter's phone validity test agrees with ``phonenumbers.is_valid_number``: example
numbers of every region and type, and random digits under every calling code."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType

from leadstream_filter.phones import is_valid_number

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
TYPES = [v for k, v in vars(PhoneNumberType).items() if k.isupper()]


@pytest.mark.parametrize("region", REGIONS)
def test_example_numbers_of_every_region(region: str) -> None:
    for kind in TYPES:
        for example in (
            phonenumbers.example_number_for_type(region, kind),
            phonenumbers.invalid_example_number(region),
        ):
            if example is None:
                continue
            assert is_valid_number(example) == phonenumbers.is_valid_number(example)
            for cut in (1, 2):  # one or two digits shorter / longer
                for n in (example.national_number // 10**cut, example.national_number * 10**cut):
                    number = phonenumbers.PhoneNumber(country_code=example.country_code,
                                                      national_number=n)  # fmt: skip
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
