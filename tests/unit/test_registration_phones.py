"""Phone rules of registrations: region validity, extensions, the national pattern, E.164."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadstream.errors import ConfigError
from leadstream.phones import is_valid_number_for_region as valid_for_region
from leadstream_ingest.errors import InvalidInput
from leadstream_ingest.phones import InvalidPhone, PhoneRules
from tests.support.phones import example_numbers, neighbours

GB = PhoneRules.of("GB", None)
GB_ELEVEN = PhoneRules.of("GB", r"^0\d{10}$")
GB_MOBILE = PhoneRules.of("GB", r"^07\d{9}$")
US = PhoneRules.of("US", r"^\d{10}$")

ACCEPTED = [
    # rules, as typed, E.164
    (GB, "07400 123456", "+447400123456"),
    (GB, "(07400) 123-456", "+447400123456"),
    (GB, "+44 7400 123456", "+447400123456"),
    (GB, "0044 7400 123456", "+447400123456"),
    (GB, "+44 (0) 7400 123456", "+447400123456"),
    (GB, "  07400.123.456  ", "+447400123456"),
    (GB, "０７４００１２３４５６", "+447400123456"),  # full-width digits
    (GB, "020 7946 0958", "+442079460958"),  # a landline is a GB number too
    (GB_ELEVEN, "020 7946 0958", "+442079460958"),
    (GB_ELEVEN, "+44 7400 123456", "+447400123456"),  # checked as dialled: 07400123456
    (GB_MOBILE, "07400 123456", "+447400123456"),
    (US, "(202) 555-0143", "+12025550143"),
    (US, "+1 202 555 0143", "+12025550143"),
]

REFUSED = [
    # rules, as typed, broken rule
    (GB, "", "parse"),
    (GB, "   ", "parse"),
    (GB, "abc", "parse"),
    (GB, "0", "parse"),
    (GB, "+44", "parse"),
    (GB, "+999 123", "parse"),
    (GB, "12345", "valid"),
    (GB, "07400 12345", "valid"),  # one digit short
    (GB, "074001234567890123", "valid"),
    (GB, "07700 900123", "valid"),  # Ofcom's drama range: not a real number
    (GB, "07400 123456 ext 12", "extension"),
    (GB, "+1 202 555 0143", "region"),
    (GB, "+33 6 12 34 56 78", "region"),
    (GB_MOBILE, "020 7946 0958", "pattern"),
    (GB_MOBILE, "+44 20 7946 0958", "pattern"),
    (US, "+44 7400 123456", "region"),
]


@pytest.mark.parametrize(("rules", "raw", "e164"), ACCEPTED)
def test_accepted_phones_are_normalized_to_e164(rules: PhoneRules, raw: str, e164: str) -> None:
    phone = rules.check(raw)
    assert phone.e164 == e164
    assert phone.region == rules.region


@pytest.mark.parametrize(("rules", "raw", "rule"), REFUSED)
def test_refused_phones_name_the_rule(rules: PhoneRules, raw: str, rule: str) -> None:
    with pytest.raises(InvalidPhone) as caught:
        rules.check(raw)
    assert caught.value.rule == rule
    assert caught.value.details == {"rule": rule}
    assert caught.value.code == "invalid_phone"
    assert caught.value.reason.startswith("phone: ")
    assert isinstance(caught.value, InvalidInput)  # → 422 at the edge


def test_the_region_mismatch_reason_names_both_regions() -> None:
    with pytest.raises(InvalidPhone, match="a US number; only GB numbers are accepted"):
        GB.check("+1 202 555 0143")


def test_national_digits_are_what_the_pattern_sees() -> None:
    assert GB.check("+44 7400 123456").national == "07400123456"
    assert US.check("+1 (202) 555-0143").national == "2025550143"


@pytest.mark.parametrize(
    ("region", "pattern", "message"),
    [("XX", None, "region"), ("", None, "region"), ("GB", "(", "not a regex")],
)
def test_bad_settings_are_refused(region: str, pattern: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PhoneRules.of(region, pattern)


def test_region_is_case_insensitive() -> None:
    assert PhoneRules.of(" gb ", None).region == "GB"


# ---------------------------------------------------------------- valid_for_region

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
# the region itself, regions sharing its calling code, one elsewhere
CHECKED_AGAINST = ["GB", "IM", "JE", "US", "CA", "DE", "FR", "IT", "AU", "IN"]


def _same_validity(number: phonenumbers.PhoneNumber, region: str) -> None:
    assert valid_for_region(number, region) == phonenumbers.is_valid_number_for_region(
        number, region
    ), (number, region)


@pytest.mark.parametrize("region", REGIONS)
def test_valid_for_region_agrees_on_example_numbers_of_every_region(region: str) -> None:
    for example in example_numbers(region):
        for against in (region, *CHECKED_AGAINST):
            _same_validity(example, against)
        for number in neighbours(example):  # one or two digits shorter / longer
            _same_validity(number, region)


@settings(max_examples=3000, deadline=None)
@given(
    st.sampled_from(CODES) | st.integers(0, 999),
    st.integers(0, 10**17),
    st.booleans(),
    st.none() | st.integers(0, 3),
    st.sampled_from(REGIONS),
)
def test_valid_for_region_agrees_on_random_numbers(
    code: int, national: int, italian: bool, zeros: int | None, region: str
) -> None:
    number = phonenumbers.PhoneNumber(country_code=code, national_number=national)
    if italian:
        number.italian_leading_zero = True
        number.number_of_leading_zeros = zeros
    _same_validity(number, region)


@settings(max_examples=2000, deadline=None)
@given(st.sampled_from(CHECKED_AGAINST), st.text("0123456789 +-()", min_size=5, max_size=18))
def test_valid_for_region_agrees_on_parsed_text(region: str, text: str) -> None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return
    _same_validity(number, region)


def test_valid_for_region_of_the_non_geographic_entity_is_phonenumbers_own() -> None:
    number = phonenumbers.parse("+80012345678")
    _same_validity(number, "001")
