"""The fast uuid5 is byte-for-byte the standard library's."""

from __future__ import annotations

import hashlib
import uuid

from hypothesis import given
from hypothesis import strategies as st

from leadstream.events.ids import contact_id, derived_event_id, uuid5_str


@given(st.text(max_size=200))
def test_uuid5_matches_the_standard_library(name: str) -> None:
    assert uuid5_str(name) == str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def test_uuid5_every_variant_digit() -> None:
    seen = set()
    for i in range(2000):  # the clock sequence's first hex digit takes all 16 values here
        name = f"leadstream:filter:{i}"
        expected = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
        assert uuid5_str(name) == expected
        digest = hashlib.sha1(uuid.NAMESPACE_URL.bytes + name.encode(), usedforsecurity=False)
        seen.add(digest.hexdigest()[16])
    assert len(seen) == 16


def test_ids_are_deterministic_and_distinct() -> None:
    assert contact_id("a@b.io") == str(uuid.uuid5(uuid.NAMESPACE_URL, "mailto:a@b.io"))
    assert derived_event_id("filter", "e1") == derived_event_id("filter", "e1")
    assert derived_event_id("filter", "e1") != derived_event_id("verify", "e1")
