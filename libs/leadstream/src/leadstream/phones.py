"""Phone numbers as phonenumbers reads them, faster: its validity tests with the metadata's
patterns compiled once per region, and its parse of the shapes people type. Shared by the
filter stage (``phone_e164``) and ingest's registration phone rules.

phonenumbers answers "valid?" by computing the number's *type*: it tests the general pattern,
then premium rate, toll free, shared cost, VoIP, personal, pager, UAN, voicemail, fixed line
and mobile, one after the other, each through a regex look-up by pattern text; and for a
calling code shared by several regions (+44: GB, GG, IM, JE; +1: US, CA, …) it does it twice
(once to find the region, once to validate for it). A number is valid when its type is not
UNKNOWN, i.e. when the general pattern matches and any one of the type patterns does, so
:func:`is_valid_number` and :func:`is_valid_number_for_region` test exactly that, with each
region's (possible lengths, compiled pattern) pairs prepared on first use. The control flow
(region look-up, calling-code check, national significant number) is phonenumbers' own, step
by step (phonenumbers 9.0, ``phonenumberutil.is_valid_number`` / ``region_code_for_number`` /
``is_valid_number_for_region`` / ``_number_type_helper``); ``tests/unit/test_filter_phones.py``
and ``tests/unit/test_registration_phones.py`` compare them with phonenumbers on example and
random numbers of every region.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber
from phonenumbers.phonemetadata import REGION_CODE_FOR_NON_GEO_ENTITY
from phonenumbers.phonenumberutil import (
    COUNTRY_CODE_TO_REGION_CODE,
    SUPPORTED_REGIONS,
    ValidationResult,
    _maybe_strip_national_prefix_carrier_code,
    _test_number_length,
    region_code_for_country_code,
)

# the descriptions _number_type_helper tests after the general one (mobile only when its
# pattern differs from the fixed line's, as there)
_TYPES = (
    "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
    "voicemail", "fixed_line",
)  # fmt: skip
_Desc = tuple[frozenset[int], re.Pattern[str]]
# id(metadata) → (metadata, general, {length: the type patterns that admit it, as one
# alternation}); the metadata is held so that its id stays its own
_Prepared = tuple[Any, "_Desc | None", dict[int, "re.Pattern[str] | None"], tuple[_Desc, ...]]
_prepared: dict[int, _Prepared] = {}


def _desc(desc: Any) -> _Desc | None:
    """(possible lengths, pattern) of a PhoneNumberDesc; None when it can never match
    (phonenumbers: no description, or no or an empty pattern)."""
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)


def _prepare(metadata: Any) -> _Prepared:
    names = _TYPES if metadata.same_mobile_and_fixed_line_pattern else (*_TYPES, "mobile")
    types = tuple(d for d in (_desc(getattr(metadata, n)) for n in names) if d is not None)
    by_length: dict[int, re.Pattern[str] | None] = {}
    prepared: _Prepared = (metadata, _desc(metadata.general_desc), by_length, types)
    _prepared[id(metadata)] = prepared
    return prepared


def _types_of_length(prepared: _Prepared, length: int) -> re.Pattern[str] | None:
    """One pattern for "any type whose possible lengths admit ``length`` matches": the
    alternation of those types' patterns (a full match of ``(?:a)|(?:b)`` is a full match of
    ``a`` or of ``b``). None when no type admits that length."""
    patterns = [p.pattern for lengths, p in prepared[3] if not lengths or length in lengths]
    combined = re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None
    prepared[2][length] = combined
    return combined


def _type_known(nsn: str, metadata: Any) -> bool:
    """``_number_type_helper(nsn, metadata) != PhoneNumberType.UNKNOWN``."""
    prepared = _prepared.get(id(metadata)) or _prepare(metadata)
    general = prepared[1]
    if general is None:
        return False
    n = len(nsn)
    if (general[0] and n not in general[0]) or general[1].fullmatch(nsn) is None:
        return False
    by_length = prepared[2]
    types = by_length[n] if n in by_length else _types_of_length(prepared, n)
    return types is not None and types.fullmatch(nsn) is not None


def _nsn(numobj: PhoneNumber) -> str:
    """``phonenumbers.national_significant_number``."""
    if numobj.italian_leading_zero:
        zeros = numobj.number_of_leading_zeros
        if zeros is None:
            zeros = 1
        if zeros > 0:
            return "0" * zeros + str(numobj.national_number)
    return str(numobj.national_number)


# calling code → ((region, its metadata, compiled leading digits or None), ...) for the codes
# shared by several regions
_shared: dict[int, tuple[tuple[str, Any, re.Pattern[str] | None], ...]] = {}


def _candidates(country_code: int, regions: Any) -> tuple[tuple[str, Any, Any], ...]:
    found = []
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is None:
            continue
        leading = metadata.leading_digits
        found.append((str(region), metadata, None if leading is None else re.compile(leading)))
    _shared[country_code] = candidates = tuple(found)
    return candidates


def _region(country_code: int, nsn: str) -> tuple[str | None, Any]:
    """``phonenumbers.region_code_for_number``, and the metadata whose type test the region
    was chosen by (None when it was not chosen that way)."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code, None)
    if regions is None:
        return None, None
    if len(regions) == 1:
        return str(regions[0]), None
    candidates = _shared.get(country_code) or _candidates(country_code, regions)
    for region, metadata, leading in candidates:
        if leading is not None:
            # phonenumbers compiles the leading digits the same way (re.compile, no flags)
            if leading.match(nsn):
                return region, None
        elif _type_known(nsn, metadata):
            return region, metadata
    return None, None


# (calling code, region) → the metadata to validate against, or None when the number is
# invalid for that pair whatever its digits, or False when phonenumbers itself must answer
_for_region: dict[tuple[int, str], Any] = {}


def _validation_metadata(country_code: int, region: str) -> Any:
    metadata: Any = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region.upper())
    if metadata is not None and region != REGION_CODE_FOR_NON_GEO_ENTITY:
        own = PhoneMetadata.metadata_for_region(region.upper(), None)
        if own is None:  # phonenumbers raises here ("Invalid region code")
            metadata = False
        elif country_code != own.country_code:
            metadata = None
    _for_region[(country_code, region)] = metadata
    return metadata


def is_valid_parts(country_code: int, nsn: str) -> bool | None:
    """``phonenumbers.is_valid_number`` of the number with this calling code and national
    significant number; None when only phonenumbers can tell (an unknown region code)."""
    region, tested = _region(country_code, nsn)
    if region is None:
        return False
    key = (country_code, region)
    metadata = _for_region[key] if key in _for_region else _validation_metadata(*key)
    if metadata is None:
        return False
    if metadata is False:
        return None
    if metadata is tested:  # the region was chosen by this very test
        return True
    return _type_known(nsn, metadata)


def is_valid_number(numobj: PhoneNumber) -> bool:
    """Exactly ``phonenumbers.is_valid_number(numobj)``."""
    if numobj.country_code is None:  # phonenumbers finds no region for it
        return False
    valid = is_valid_parts(numobj.country_code, _nsn(numobj))
    if valid is None:
        return bool(phonenumbers.is_valid_number(numobj))
    return valid


def is_valid_number_for_region(numobj: PhoneNumber, region: str) -> bool:
    """Exactly ``phonenumbers.is_valid_number_for_region(numobj, region)``."""
    own = PhoneMetadata.metadata_for_region(region, None)
    if own is None or region == REGION_CODE_FOR_NON_GEO_ENTITY:
        return bool(phonenumbers.is_valid_number_for_region(numobj, region))
    if numobj.country_code != own.country_code:
        return False
    return _type_known(_nsn(numobj), own)


# ``phonenumbers.parse`` for the shapes people type: an optional leading ``+``, then ASCII
# digits with spaces, hyphens, dots and parentheses. For such text parse's own steps reduce
# to: the possible number is the text itself (nothing before its first ``+``/digit matters,
# no trailing junk, no second number, no extension label, no RFC 3966 parts), it is viable
# (at least three digits), its normalized form is its digits; then the calling code and the
# national prefix, which are replicated below (phonenumbers 9.0, ``parse`` /
# ``_maybe_extract_country_code`` / ``_extract_country_code``), with phonenumbers' own
# ``_maybe_strip_national_prefix_carrier_code`` and ``_test_number_length``. Anything where
# parse would take another branch (a ``+0…`` retried as a national number, an international
# dialling prefix, a national number that starts with the default calling code, an unknown
# region) is left to phonenumbers. ``tests/unit/test_filter_phones.py`` compares the two.
_PLAIN = re.compile(r"\+?[0-9 ().\-]*")
_NOT_DIGITS = str.maketrans("", "", "+ ().-")
_MAX_INPUT = 250  # phonenumberutil._MAX_INPUT_STRING_LENGTH
_MIN_NSN = 2  # _MIN_LENGTH_FOR_NSN
_MAX_NSN = 17  # _MAX_LENGTH_FOR_NSN
_KEEP_PREFIX = (
    ValidationResult.TOO_SHORT,
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    ValidationResult.INVALID_LENGTH,
)


# metadata as parse strips the national prefix with: (metadata, compiled
# national_prefix_for_parsing or None when there is none)
_Strip = tuple[Any, "re.Pattern[str] | None"]
# (calling code, default region) → the metadata parse strips the national prefix with
_cc_metadata: dict[tuple[int, str], _Strip | None] = {}
# default region → (its metadata, its calling code as text, compiled international prefix)
_home: dict[str, tuple[_Strip, str, re.Pattern[str] | None] | None] = {}


def _strip(metadata: Any) -> _Strip | None:
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    # _maybe_strip_national_prefix_carrier_code compiles it the same way (re.compile)
    return metadata, re.compile(prefix) if prefix else None


def _metadata_after_code(country_code: int, region: str) -> _Strip | None:
    number_region = region_code_for_country_code(country_code)
    if number_region != region:
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, number_region)
    else:
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
    _cc_metadata[(country_code, region)] = strip = _strip(metadata)
    return strip


def _home_region(region: str) -> tuple[_Strip, str, re.Pattern[str] | None] | None:
    home = None
    if region in SUPPORTED_REGIONS:  # parse's _check_region_for_parsing
        strip = _strip(PhoneMetadata.metadata_for_region(region.upper(), None))
        if strip is not None:
            metadata = strip[0]
            idd = metadata.international_prefix
            home = (strip, str(metadata.country_code), None if idd is None else re.compile(idd))
    _home[region] = home
    return home


def parse_plain(
    text: str, region: str, min_digits: int = 0
) -> tuple[int, str] | Literal[False] | None:
    """(calling code, national significant number) of ``phonenumbers.parse(text, region)``,
    None where parse raises NumberParseException or the text has fewer than ``min_digits``
    digits; False for text of another shape or a case left to phonenumbers."""
    if len(text) > _MAX_INPUT or _PLAIN.fullmatch(text) is None:
        return False
    digits = text.translate(_NOT_DIGITS)
    if len(digits) < 3:  # viability needs three digits (or exactly two: left to parse)
        return False
    if len(digits) < min_digits:
        return None
    if text[0] == "+":
        if digits[0] == "0":  # no calling code: parse retries the digits as a national number
            return False
        for end in (1, 2, 3):  # _extract_country_code
            country_code = int(digits[:end])
            if country_code in COUNTRY_CODE_TO_REGION_CODE:
                break
        else:
            return False
        national = digits[end:]
        key = (country_code, region)
        strip = _cc_metadata[key] if key in _cc_metadata else _metadata_after_code(*key)
        if strip is None:  # parse asserts it is not
            return False
    else:
        home = _home[region] if region in _home else _home_region(region)
        if home is None:
            return False
        strip, code_text, idd = home
        if (idd is not None and idd.match(digits)) or digits.startswith(code_text):
            return False  # maybe an international prefix or the calling code
        country_code = strip[0].country_code
        national = digits
    if len(national) < _MIN_NSN:
        return None
    metadata, prefix = strip
    # without a match of the prefix pattern, _maybe_strip_national_prefix_carrier_code
    # returns the number as it is
    if prefix is not None and prefix.match(national):
        _, stripped, _ = _maybe_strip_national_prefix_carrier_code(national, metadata)
        if _test_number_length(stripped, metadata) not in _KEEP_PREFIX:
            national = stripped
    if not _MIN_NSN <= len(national) <= _MAX_NSN:
        return None
    return country_code, national


__all__ = ["is_valid_number", "is_valid_number_for_region", "is_valid_parts", "parse_plain"]
