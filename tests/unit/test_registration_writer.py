"""The registration writer's decisions, with an in-memory store that keeps the real store's
contract (first claim of a phone wins and is remembered; a request's first outcome stands)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from leadstream.db.contacts import DatabaseUnavailableError
from leadstream.runtime import BadRecord, Record, RetryLater
from leadstream_ingest.registration_writer import (
    Outcome,
    Registration,
    RegistrationWriter,
    decide,
)

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class MemoryStore:
    def __init__(self) -> None:
        self.phones: dict[str, str] = {}  # phone → request that created it
        self.outcomes: dict[str, str] = {}  # request id → status
        self.down = False

    def claim(self, claims: Sequence[Registration]) -> dict[str, str]:
        if self.down:
            raise DatabaseUnavailableError("down")
        phones = [c.phone_e164 for c in claims]
        assert len(phones) == len(set(phones)), "phones must be distinct within a claim"
        for c in claims:
            self.phones.setdefault(c.phone_e164, c.request_id)
        return {p: self.phones[p] for p in phones}

    def record(self, outcomes: Sequence[Outcome]) -> None:
        for o in outcomes:
            self.outcomes.setdefault(o.request_id, o.status)


def event(request_id: str, phone: str = "+447400123456", **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"ev-{request_id}",
        "source": "landing:spring",
        "event_time": AT,
        "request_id": request_id,
        "phone": phone,
        "phone_e164": phone,
        "region": "GB",
        "first_name": "Ada",
        "custom_fields": {},
        **extra,
    }


def record(value: dict[str, Any], offset: int = 0) -> Record:
    return Record("t.registrations", 0, offset, value["phone_e164"].encode(), value, {}, 0)


def run(store: MemoryStore, values: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        list(o) for o in RegistrationWriter(store)([record(v, i) for i, v in enumerate(values)])
    ]


def test_first_request_registers_and_later_ones_are_duplicates() -> None:
    store = MemoryStore()
    assert run(store, [event("a")]) == [[]]  # the stage produces nothing
    run(store, [event("b"), event("c", "+447400654321")])
    assert store.outcomes == {"a": "registered", "b": "duplicate", "c": "registered"}


def test_the_same_phone_twice_in_one_batch() -> None:
    store = MemoryStore()
    run(store, [event("a"), event("b"), event("c")])
    assert store.outcomes == {"a": "registered", "b": "duplicate", "c": "duplicate"}
    assert store.phones == {"+447400123456": "a"}


def test_a_replayed_batch_decides_the_same() -> None:
    store = MemoryStore()
    batch = [event("a"), event("b"), event("c", "+447400654321")]
    run(store, batch)
    first = dict(store.outcomes)
    store.outcomes.clear()  # as if the outcomes had not been written before the crash
    run(store, batch)
    assert store.outcomes == first
    run(store, batch)
    assert store.outcomes == first


def test_replay_after_the_phone_row_was_written_is_not_its_own_duplicate() -> None:
    store = MemoryStore()
    registrations = [Registration.of(event("a"))]
    store.claim(registrations)  # crashed after claiming, before recording
    outcomes = decide(registrations, store.claim)
    assert [o.status for o in outcomes] == ["registered"]


def test_event_time_as_millis_is_read_too() -> None:
    reg = Registration.of(event("a", event_time=int(AT.timestamp() * 1000)))
    assert reg.accepted_at == AT


@pytest.mark.parametrize(
    "bad",
    [
        {"phone_e164": "07400123456"},
        {"phone_e164": "+0123"},
        {"phone_e164": ""},
        {"request_id": ""},
        {"request_id": "x" * 129},
    ],
)
def test_unstorable_events_are_bad_records(bad: dict[str, Any]) -> None:
    with pytest.raises(BadRecord):
        Registration.of({**event("a"), **bad})


def test_database_down_is_retry_later() -> None:
    store = MemoryStore()
    store.down = True
    with pytest.raises(RetryLater):
        run(store, [event("a")])
    assert store.outcomes == {}
