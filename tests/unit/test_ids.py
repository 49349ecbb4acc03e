"""The fast uuid5 is byte-for-byte the standard library's."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from leadstream.events.ids import contact_id, derived_event_id, uuid5_str


@given(st.text(max_size=200))
def test_uuid5_matches_the_standard_library(name: str) -> None:
    assert uuid5_str(name) == str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def test_ids_are_deterministic_and_distinct() -> None:
    assert contact_id("a@b.io") == str(uuid.uuid5(uuid.NAMESPACE_URL, "mailto:a@b.io"))
    assert derived_event_id("filter", "e1") == derived_event_id("filter", "e1")
    assert derived_event_id("filter", "e1") != derived_event_id("verify", "e1")
