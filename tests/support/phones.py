"""Phone numbers to compare our phone code with phonenumbers on: every example number
phonenumbers carries for a region, and its neighbours."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberType

TYPES = [v for k, v in vars(PhoneNumberType).items() if k.isupper()]


def example_numbers(region: str) -> Iterator[PhoneNumber]:
    """The region's example number of every type, and its invalid example (those it has)."""
    for kind in TYPES:
        for example in (
            phonenumbers.example_number_for_type(region, kind),
            phonenumbers.invalid_example_number(region),
        ):
            if example is not None:
                yield example


def neighbours(example: PhoneNumber, cuts: Iterable[int] = (1, 2)) -> Iterator[PhoneNumber]:
    """The example's national number ``cut`` digits shorter and longer (0: as is), each once
    per cut, in the example's calling code."""
    for cut in cuts:
        for n in dict.fromkeys((example.national_number // 10**cut,
                                example.national_number * 10**cut)):  # fmt: skip
            yield PhoneNumber(country_code=example.country_code, national_number=n)
