"""Cleaning of names, free text, phones and websites."""

from __future__ import annotations

import pytest

from leadstream_filter.fields import (
    clean_name,
    clean_text,
    phone_e164,
    region_of,
    website_domain,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Jane", "Jane"),
        ("  jane  ", "Jane"),
        ("JANE", "Jane"),
        ("o'BRIEN", "o'BRIEN"),  # mixed case is left as typed
        ("O'BRIEN", "O'Brien"),
        ("anne-marie", "Anne-Marie"),
        ("mcdonald", "McDonald"),
        ("van der berg", "Van der Berg"),
        ("Ludwig van Beethoven", "Ludwig van Beethoven"),
        ('"Jane",', "Jane"),
        ("Mary   Jane", "Mary Jane"),
        ("josé", "José"),
        ("Jo\x00se", "Jose"),
        ("n/a", None),
        ("-", None),
        ("123", None),
        ("", None),
        (None, None),
    ],
)
def test_clean_name(raw: str | None, clean: str | None) -> None:
    assert clean_name(raw) == clean


def test_clean_text() -> None:
    assert clean_text("  Acme\tInsurance \n Ltd ") == "Acme Insurance Ltd"
    assert clean_text("NULL") is None
    assert clean_text("x" * 900) == "x" * 500
    assert clean_text("Cafe\u0301") == "Café"  # NFC


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("+1 415 555 2671", "GB", "+14155552671"),
        ("00 44 20 7946 0958", "DE", "+442079460958"),
        ("07911 123456", "GB", "+447911123456"),
        ("12345", "GB", None),  # too short to be valid
        ("+44 20 7946 095", "GB", None),  # invalid length
        ("call me", "GB", None),
        ("", "GB", None),
        (None, "GB", None),
    ],
)
def test_phone_e164(raw: str | None, region: str, e164: str | None) -> None:
    assert phone_e164(raw, region) == e164


@pytest.mark.parametrize(
    ("country", "region"),
    [("gb", "GB"), ("United Kingdom", "GB"), ("UK", "GB"), ("usa", "US"), ("Narnia", "IE"),
     (None, "IE"), ("", "IE"), ("zz", "IE"), ("de", "DE")],
)  # fmt: skip
def test_region_of(country: str | None, region: str) -> None:
    assert region_of(country, "IE") == region


@pytest.mark.parametrize(
    ("raw", "domain"),
    [
        ("https://www.Example-Company.com/about?x=1", "example-company.com"),
        ("example.com", "example.com"),
        ("www.example.co.uk/", "example.co.uk"),
        ("http://user:pw@shop.example.com:8080/x", "shop.example.com"),
        ("https://bücher.de", "xn--bcher-kva.de"),
        ("EXAMPLE.COM.", "example.com"),
        ("//example.org", "example.org"),
        ("not a website", None),
        ("http://localhost:3000", None),
        ("", None),
        (None, None),
    ],
)
def test_website_domain(raw: str | None, domain: str | None) -> None:
    assert website_domain(raw) == domain


def test_possible_phone_numbers_when_not_strict() -> None:
    unassigned = "+1 415 055 2671"  # right length, exchange 055 is not assigned
    assert phone_e164(unassigned, "GB") is None
    assert phone_e164(unassigned, "GB", False) == "+14150552671"
    assert phone_e164("+44 20 7946 0958 1234", "GB", False) is None  # too long
