"""``phonenumbers.is_valid_number`` with the metadata's patterns compiled once per region.

phonenumbers answers "valid?" by computing the number's *type*: it tests the general pattern,
then premium rate, toll free, shared cost, VoIP, personal, pager, UAN, voicemail, fixed line
and mobile, one after the other, each through a regex look-up by pattern text; and for a
calling code shared by several regions (+44: GB, GG, IM, JE; +1: US, CA, …) it does it twice
(once to find the region, once to validate for it). A number is valid when its type is not
UNKNOWN, i.e. when the general pattern matches and any one of the type patterns does, so
:func:`is_valid_number` tests exactly that, with each region's (possible lengths, compiled
pattern) pairs prepared on first use. The control flow (region look-up, calling-code check,
national significant number) is phonenumbers' own, step by step (phonenumbers 9.0,
``phonenumberutil.is_valid_number`` / ``region_code_for_number`` /
``is_valid_number_for_region`` / ``_number_type_helper``);
``tests/unit/test_filter_phones.py`` compares the two on example and random numbers of every
region.
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber
from phonenumbers.phonemetadata import REGION_CODE_FOR_NON_GEO_ENTITY
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

# the descriptions _number_type_helper tests after the general one (mobile only when its
# pattern differs from the fixed line's, as there)
_TYPES = (
    "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
    "voicemail", "fixed_line",
)  # fmt: skip
_Desc = tuple[frozenset[int], re.Pattern[str]]
# id(metadata) → (metadata, general, types); the metadata is held so that its id stays its own
_prepared: dict[int, tuple[Any, _Desc | None, tuple[_Desc, ...]]] = {}


def _desc(desc: Any) -> _Desc | None:
    """(possible lengths, pattern) of a PhoneNumberDesc; None when it can never match
    (phonenumbers: no description, or no or an empty pattern)."""
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)


def _prepare(metadata: Any) -> tuple[Any, _Desc | None, tuple[_Desc, ...]]:
    names = _TYPES if metadata.same_mobile_and_fixed_line_pattern else (*_TYPES, "mobile")
    types = tuple(d for d in (_desc(getattr(metadata, n)) for n in names) if d is not None)
    prepared = (metadata, _desc(metadata.general_desc), types)
    _prepared[id(metadata)] = prepared
    return prepared


def _matches(nsn: str, desc: _Desc) -> bool:
    lengths, pattern = desc
    if lengths and len(nsn) not in lengths:
        return False
    return pattern.fullmatch(nsn) is not None


def _type_known(nsn: str, metadata: Any) -> bool:
    """``_number_type_helper(nsn, metadata) != PhoneNumberType.UNKNOWN``."""
    _, general, types = _prepared.get(id(metadata)) or _prepare(metadata)
    if general is None or not _matches(nsn, general):
        return False
    return any(_matches(nsn, d) for d in types)


def _nsn(numobj: PhoneNumber) -> str:
    """``phonenumbers.national_significant_number``."""
    if numobj.italian_leading_zero:
        zeros = numobj.number_of_leading_zeros
        if zeros is None:
            zeros = 1
        if zeros > 0:
            return "0" * zeros + str(numobj.national_number)
    return str(numobj.national_number)


def _region(numobj: PhoneNumber, nsn: str) -> str | None:
    """``phonenumbers.region_code_for_number``."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(numobj.country_code, None)
    if regions is None:
        return None
    if len(regions) == 1:
        return str(regions[0])
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is None:
            continue
        if metadata.leading_digits is not None:
            if phonenumbers.re_util.re_compile(metadata.leading_digits).match(nsn):
                return str(region)
        elif _type_known(nsn, metadata):
            return str(region)
    return None


def is_valid_number(numobj: PhoneNumber) -> bool:
    """Exactly ``phonenumbers.is_valid_number(numobj)``."""
    nsn = _nsn(numobj)
    region = _region(numobj, nsn)
    if region is None:
        return False
    country_code = numobj.country_code
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region.upper())
    if metadata is None:
        return False
    if region != REGION_CODE_FOR_NON_GEO_ENTITY:
        own = PhoneMetadata.metadata_for_region(region.upper(), None)
        if own is None:  # phonenumbers raises here ("Invalid region code")
            return bool(phonenumbers.is_valid_number(numobj))
        if country_code != own.country_code:
            return False
    return _type_known(nsn, metadata)


__all__ = ["is_valid_number"]
