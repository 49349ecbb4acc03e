"""Cleaning of the other contact fields: phone to E.164, names, free text, website → domain."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from urllib.parse import urlsplit

import phonenumbers

from leadstream.phones import is_valid_number, is_valid_parts, parse_plain
from leadstream_filter.address import ascii_domain

# Keep phonenumbers' compiled metadata patterns (its own switch): otherwise every pattern test
# looks the pattern text up in the re module's cache again, about a fifth of a parse.
phonenumbers.enable_pattern_cache()

MAX_TEXT = 500
_SPACES = re.compile(r"\s+")
_CONTROL = dict.fromkeys(c for c in range(0x20) if chr(c) not in "\t\n\r")
_CONTROL.update(dict.fromkeys([0x7F, 0x200B, 0x2060, 0xFEFF]))
_PLACEHOLDERS = frozenset(
    {"-", "--", ".", "?", "n/a", "na", "none", "null", "nil", "unknown", "undefined", "x"}
)
_NAME_EDGES = " \t\"'`,.;:()[]{}<>*_-"
_NAME_PARTICLES = frozenset({"van", "von", "der", "den", "de", "da", "di", "del", "du", "la", "le"})
_NAME_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# Country as people type it → ISO 3166-1 alpha-2 (two-letter codes are taken as they are).
_COUNTRY_NAMES = {
    "uk": "GB",
    "united kingdom": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "gbr": "GB",
    "usa": "US",
    "united states": "US",
    "united states of america": "US",
    "america": "US",
    "canada": "CA",
    "can": "CA",
    "ireland": "IE",
    "irl": "IE",
    "australia": "AU",
    "aus": "AU",
    "new zealand": "NZ",
    "germany": "DE",
    "deutschland": "DE",
    "deu": "DE",
    "france": "FR",
    "fra": "FR",
    "spain": "ES",
    "españa": "ES",
    "italy": "IT",
    "italia": "IT",
    "netherlands": "NL",
    "the netherlands": "NL",
    "mexico": "MX",
    "méxico": "MX",
    "india": "IN",
}


def clean_text(raw: str | None, *, limit: int = MAX_TEXT) -> str | None:
    """NFC, control characters dropped, whitespace collapsed, trimmed; None when empty or a
    placeholder (``n/a``, ``null``, ``-``...)."""
    if raw is None:
        return None
    if raw.isascii() and raw.isprintable() and "  " not in raw and raw.strip() == raw:
        text = raw  # the common case: nothing to clean
    else:
        text = raw
        if not text.isascii():
            text = unicodedata.normalize("NFC", text)
        text = _SPACES.sub(" ", text.translate(_CONTROL)).strip()
    if not text or (len(text) <= 9 and text.lower() in _PLACEHOLDERS):
        return None
    return text if len(text) <= limit else text[:limit]


@lru_cache(maxsize=65_536)
def clean_name(raw: str | None) -> str | None:
    """A person's name: :func:`clean_text`, stray quotes/punctuation at the edges dropped, and
    ALL-CAPS or all-lower names put in title case (``o'BRIEN`` stays as typed; ``O'BRIEN`` →
    ``O'Brien``; ``van der berg`` → ``van der Berg`` after the first word). None when no letter
    is left. Cached: first names (and many last names) repeat."""
    text = clean_text(raw, limit=200)
    if text is None:
        return None
    text = text.strip(_NAME_EDGES)
    if not _NAME_WORD.search(text):
        return None
    if text.isupper() or text.islower():
        words = text.lower().split(" ")
        text = " ".join(
            w if i > 0 and w in _NAME_PARTICLES else _title(w) for i, w in enumerate(words)
        )
    return text


def _title(word: str) -> str:
    # str.title() capitalizes after any non-letter: o'brien → O'Brien, anne-marie → Anne-Marie
    titled = word.title()
    if titled.startswith("Mc") and len(titled) > 2:
        titled = "Mc" + titled[2].upper() + titled[3:]
    return titled


def region_of(country: str | None, default: str) -> str:
    """The phone region for a country as submitted (ISO code or common name), else default."""
    if country:
        c = country.strip()
        named = _COUNTRY_NAMES.get(c.lower())
        if named is not None:
            return named
        if len(c) == 2 and c.upper() in phonenumbers.SUPPORTED_REGIONS:
            return c.upper()
    return default


@lru_cache(maxsize=65_536)
def phone_e164(raw: str | None, region: str, strict: bool = True) -> str | None:
    """E.164 (``+15551234567``) when ``raw`` is a valid number (``region`` applies to numbers
    without a country code), else None. ``strict=False`` only checks that the length is
    possible for the country (about 3× cheaper: phonenumbers' validity test walks every number
    type's pattern; :mod:`leadstream.phones` does that test with pre-compiled patterns).
    Text of the usual shapes (``+`` or national digits with spaces, hyphens, dots, brackets)
    skips ``phonenumbers.parse`` (:func:`leadstream.phones.parse_plain`, same result).
    Cached: lists repeat switchboard numbers."""
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    parsed = parse_plain(text, region, min_digits=5)
    if parsed is False:
        return _phone_e164_slow(text, region, strict)
    if parsed is None:
        return None
    country_code, nsn = parsed
    valid = is_valid_parts(country_code, nsn) if strict else None
    if valid is None:  # not strict, or a case only phonenumbers answers
        number = phonenumbers.PhoneNumber(country_code=country_code, national_number=int(nsn))
        if len(nsn) > 1 and nsn[0] == "0":  # parse's _set_italian_leading_zeros_for_phone_number
            number.italian_leading_zero = True
            zeros = len(nsn) - len(nsn.lstrip("0"))
            zeros = min(zeros, len(nsn) - 1)
            if zeros != 1:
                number.number_of_leading_zeros = zeros
        check = phonenumbers.is_valid_number if strict else phonenumbers.is_possible_number
        valid = bool(check(number))
    # format_number(E164) is "+", the calling code, the national significant number
    return f"+{country_code}{nsn}" if valid else None


def _phone_e164_slow(text: str, region: str, strict: bool) -> str | None:
    if sum(ch.isdigit() for ch in text) < 5:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    valid = is_valid_number if strict else phonenumbers.is_possible_number
    if not valid(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=65_536)
def website_domain(raw: str | None) -> str | None:
    """The host of a website URL or bare domain: lower-cased, IDNA-encoded, ``www.`` and a
    trailing dot dropped; None unless email-validator would accept it as a mail domain."""
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    if "://" not in text:
        text = "http://" + text.lstrip("/")
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    return ascii_domain(host)


__all__ = ["clean_name", "clean_text", "phone_e164", "region_of", "website_domain"]
