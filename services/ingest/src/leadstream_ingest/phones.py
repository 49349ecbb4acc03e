"""Phone rules of landing-page registrations (pure): a phone must be a valid number of the
configured region, without an extension, and, when a national pattern is configured, match it.

The pattern is matched (``fullmatch``) against the number *as dialled nationally, digits
only*, whatever form it was typed in: for GB, ``+44 7400 123456``, ``0044 7400 123456`` and
``07400-123456`` are all checked as ``07400123456``, so ``^0\\d{10}$`` means "an 11-digit
national number". Accepted numbers are normalized to E.164 (``+447400123456``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Self

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumber, PhoneNumberFormat
from phonenumbers.phonemetadata import REGION_CODE_FOR_NON_GEO_ENTITY

from leadstream.errors import ConfigError
from leadstream_ingest.errors import InvalidInput

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "the country code is not valid",
    NumberParseException.NOT_A_NUMBER: "this is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}
_NON_DIGITS = re.compile(r"\D")
# phonenumbers compiles its metadata patterns through re.compile at every use (the re
# module's own cache then looks the pattern text up again): its pattern cache keeps the
# compiled patterns; same answers, about a tenth of a phone check.
phonenumbers.enable_pattern_cache()

# The descriptions phonenumbers' _number_type_helper tests after the general one (mobile only
# when its pattern differs from the fixed line's, as there).
_TYPES = (
    "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
    "voicemail", "fixed_line",
)  # fmt: skip
_Desc = tuple[frozenset[int], re.Pattern[str]]
# region -> (its calling code, general description, type descriptions); None: ask phonenumbers
_REGIONS: dict[str, tuple[int, _Desc | None, tuple[_Desc, ...]] | None] = {}


class InvalidPhone(InvalidInput):
    """The phone breaks a rule; ``rule`` names which (``parse``, ``extension``, ``region``,
    ``valid``, ``pattern``)."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"phone: {reason}", code="invalid_phone", details={"rule": rule})
        self.rule = rule


@dataclass(frozen=True, slots=True)
class Phone:
    """An accepted phone."""

    e164: str
    region: str
    number: PhoneNumber = field(repr=False, compare=False)  # as parsed

    @property
    def national(self) -> str:
        """As dialled nationally, digits only (formatted when asked: ~8 µs)."""
        return national_digits(self.number)


def _desc(desc: Any) -> _Desc | None:
    """(possible lengths, pattern) of a PhoneNumberDesc; None when it can never match."""
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)


def _prepare(region: str) -> tuple[int, _Desc | None, tuple[_Desc, ...]] | None:
    metadata = PhoneMetadata.metadata_for_region(region, None)
    prepared = None
    if metadata is not None and region != REGION_CODE_FOR_NON_GEO_ENTITY:
        names = _TYPES if metadata.same_mobile_and_fixed_line_pattern else (*_TYPES, "mobile")
        types = tuple(d for d in (_desc(getattr(metadata, n)) for n in names) if d is not None)
        prepared = (metadata.country_code, _desc(metadata.general_desc), types)
    _REGIONS[region] = prepared
    return prepared


def _matches(nsn: str, desc: _Desc) -> bool:
    lengths, pattern = desc
    if lengths and len(nsn) not in lengths:
        return False
    return pattern.fullmatch(nsn) is not None


def valid_for_region(number: PhoneNumber, region: str) -> bool:
    """Exactly ``phonenumbers.is_valid_number_for_region(number, region)``, with the region's
    patterns compiled once: phonenumbers computes the number's *type*, testing up to eleven
    descriptions through a look-up by pattern text each, where "valid" only needs the general
    pattern and any one type pattern to match (its control flow, phonenumbers 9.0:
    ``is_valid_number_for_region`` / ``_number_type_helper`` / ``_is_number_matching_desc``;
    ``tests/unit/test_registration_phones.py`` compares the two)."""
    prepared = _REGIONS[region] if region in _REGIONS else _prepare(region)
    if prepared is None:
        return bool(phonenumbers.is_valid_number_for_region(number, region))
    country_code, general, types = prepared
    if number.country_code != country_code:
        return False
    nsn = str(number.national_number)  # phonenumbers.national_significant_number
    if number.italian_leading_zero:
        zeros = number.number_of_leading_zeros
        if zeros is None:
            zeros = 1
        if zeros > 0:
            nsn = "0" * zeros + nsn
    if general is None or not _matches(nsn, general):
        return False
    return any(_matches(nsn, d) for d in types)


def national_digits(number: PhoneNumber) -> str:
    return _NON_DIGITS.sub("", phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL))


@dataclass(frozen=True, slots=True)
class PhoneRules:
    region: str
    pattern: re.Pattern[str] | None = None

    @classmethod
    def of(cls, region: str, pattern: str | None) -> Self:
        """Rules from settings; :class:`ConfigError` for an unknown region or a bad regex."""
        code = region.strip().upper()
        if code not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigError(
                f"registration region {region!r} is not an ISO region phonenumbers knows"
            )
        try:
            compiled = re.compile(pattern) if pattern else None
        except re.error as exc:
            raise ConfigError(
                f"registration phone pattern {pattern!r} is not a regex: {exc}"
            ) from None
        return cls(code, compiled)

    def check(self, raw: str) -> Phone:
        """The phone, normalized; :class:`InvalidPhone` with the broken rule otherwise."""
        text = raw.strip()
        if not text:
            raise InvalidPhone("parse", "a phone number is required")
        try:
            number = phonenumbers.parse(text, self.region)
        except NumberParseException as exc:
            raise InvalidPhone(
                "parse", _PARSE_REASONS.get(exc.error_type, "not a phone number")
            ) from None
        if number.extension:
            raise InvalidPhone("extension", "extensions are not accepted")
        if not valid_for_region(number, self.region):
            other = phonenumbers.region_code_for_number(number)
            if other and other != self.region and phonenumbers.is_valid_number(number):
                raise InvalidPhone(
                    "region", f"a {other} number; only {self.region} numbers are accepted"
                )
            raise InvalidPhone("valid", f"not a valid {self.region} number")
        if self.pattern is not None and not self.pattern.fullmatch(national_digits(number)):
            raise InvalidPhone("pattern", f"not in the accepted format for {self.region} numbers")
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        return Phone(e164=e164, region=self.region, number=number)
