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
from typing import Self

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat

from leadstream.errors import ConfigError
from leadstream.phones import is_valid_number_for_region
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
        if not is_valid_number_for_region(number, self.region):
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
