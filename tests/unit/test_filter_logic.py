"""The filter's decisions, with hand-written fakes of its ports (no I/O)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from leadstream.events import contact_id, derived_event_id
from leadstream.runtime import Output, Record, RetryLater
from leadstream_filter.logic import FILTERED, REJECTED, FilterLogic
from leadstream_filter.policy import Policy
from leadstream_filter.ports import NewContact
from leadstream_filter.suppressions import SuppressionSnapshot
from tests.support.clock import Clock


class FakeRegistry:
    """The contact registry in a dict: email → creating event id (claims may come from the
    filter's claim thread, hence the lock)."""

    def __init__(self) -> None:
        self.rows: dict[str, NewContact] = {}
        self.calls = 0
        self.down = False
        self.lock = threading.Lock()

    def claim(self, contacts: Sequence[NewContact]) -> Mapping[str, str]:
        if self.down:
            raise RetryLater("database down")
        with self.lock:
            self.calls += 1
            assert len({c.email_normalized for c in contacts}) == len(contacts), "not distinct"
            for c in contacts:
                self.rows.setdefault(c.email_normalized, c)
            return {c.email_normalized: self.rows[c.email_normalized].event_id for c in contacts}


@dataclass(frozen=True)
class Change:
    kind: str
    value: str
    active: bool


class FakeSuppressionSource:
    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.polls = 0

    def changes_since(self, version: int) -> tuple[Sequence[Change], int]:
        self.polls += 1
        return self.changes[version:], len(self.changes)


def raw(email: str | None, **fields: Any) -> Record:
    value: dict[str, Any] = {
        "event_id": fields.pop("event_id", str(uuid.uuid4())),
        "job_id": "job-1",
        "source": "api",
        "event_time": 0,
        "request_id": None,
        "email": email,
        "tags": [],
        "custom_fields": {},
        **fields,
    }
    return Record("contacts.raw", 0, 0, (email or "").lower().encode(), value, {}, 0)


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def source() -> FakeSuppressionSource:
    return FakeSuppressionSource()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(
    registry: FakeRegistry, source: FakeSuppressionSource, clock: Clock, **policy: Any
) -> FilterLogic:
    snapshot = SuppressionSnapshot(source, refresh_s=2.0, clock=clock)
    return FilterLogic(Policy.of(**policy), registry, snapshot, clock=clock)


def one(outputs: list[list[Output]]) -> list[Output]:
    assert all(len(o) == 1 for o in outputs)
    return [o[0] for o in outputs]


def test_new_contact_is_filtered_with_clean_fields(
    registry: FakeRegistry, source: FakeSuppressionSource, clock: Clock
) -> None:
    rec = raw(
        ' "JANE DOE" <Jane.Doe@Example.COM> ',
        first_name="JANE",
        last_name="o'brien",
        phone="020 7946 0958",
        company="  Acme   Ltd ",
        website="https://www.acme.example/about",
        country="United Kingdom",
        tags=["auto", " auto ", "", "home"],
    )
    (out,) = one(make(registry, source, clock)([rec]))
    assert out.topic == FILTERED
    assert out.key == "jane.doe@example.com"
    v = out.value
    assert v is not None
    assert v["event_id"] == derived_event_id("filter", rec.value["event_id"])
    assert v["raw_event_id"] == rec.value["event_id"]
    assert v["contact_id"] == contact_id("jane.doe@example.com")
    assert (v["email_normalized"], v["domain"]) == ("jane.doe@example.com", "example.com")
    assert v["email"] == rec.value["email"]  # as submitted
    assert (v["first_name"], v["last_name"]) == ("Jane", "O'Brien")
    assert (v["phone_e164"], v["phone"]) == ("+442079460958", "020 7946 0958")
    assert (v["company"], v["website"]) == ("Acme Ltd", "acme.example")
    assert v["tags"] == ["auto", "home"]
    assert (v["role_account"], v["free_provider"], v["source"]) == (False, False, "filter")
    assert registry.rows["jane.doe@example.com"].email == "Jane.Doe@example.com"


@pytest.mark.parametrize(
    ("email", "reason", "key"),
    [
        (None, "missing_email", b""),
        ("  ", "missing_email", b"  "),
        ("Not An Email", "invalid_email", "not an email"),
        ('"a b"@example.com', "invalid_email", '"a b"@example.com'),
    ],
)
def test_unusable_emails_are_rejected(
    registry: FakeRegistry,
    source: FakeSuppressionSource,
    clock: Clock,
    email: str | None,
    reason: str,
    key: object,
) -> None:
    rec = raw(email)
    (out,) = one(make(registry, source, clock)([rec]))
    assert out.topic == REJECTED
    assert out.headers == {"reason": reason}
    assert out.value is not None
    assert (out.value["reason"], out.value["stage"]) == (reason, "filter")
    assert out.value["contact_id"] is None
    assert out.value["email_normalized"] is None
    assert out.key == key
    assert registry.calls == 0


def test_duplicates_first_in_batch_wins_and_replay_is_not_a_duplicate(
    registry: FakeRegistry, source: FakeSuppressionSource, clock: Clock
) -> None:
    logic = make(registry, source, clock)
    batch = [raw("jane@example.com"), raw("JANE@example.com"), raw("bob@example.com")]
    first = one(logic(batch))
    assert [o.topic for o in first] == [FILTERED, REJECTED, FILTERED]
    dup = first[1]
    assert dup.headers == {"reason": "duplicate"}
    assert dup.value is not None
    assert dup.value["contact_id"] == contact_id("jane@example.com")
    assert batch[0].value["event_id"] in dup.value["detail"]
    assert registry.calls == 1  # one registry round trip per batch
    # the same batch again (a replay, or a retry after a crash): the same decisions and ids
    again = one(logic(batch))
    assert [(o.topic, o.key) for o in again] == [(o.topic, o.key) for o in first]
    assert [o.value["event_id"] for o in again if o.value] == [
        o.value["event_id"] for o in first if o.value
    ]
    # a later, different event for jane is a duplicate of the first one
    later = one(logic([raw(" jane@EXAMPLE.com ")]))
    assert [o.topic for o in later] == [REJECTED]


def test_one_record_at_a_time_decides_the_same(
    registry: FakeRegistry, source: FakeSuppressionSource, clock: Clock
) -> None:
    """The runtime re-runs a failing batch record by record: decisions must not change."""
    batch = [raw("a@example.com"), raw("A@example.com"), raw("b@example.com")]
    together = [o.topic for o in one(make(FakeRegistry(), source, clock)(batch))]
    logic = make(registry, source, clock)
    alone = [one(logic([r]))[0].topic for r in batch]
    assert alone == together


def test_suppressions_apply_within_the_refresh_interval(
    registry: FakeRegistry, source: FakeSuppressionSource, clock: Clock
) -> None:
    logic = make(registry, source, clock)
    assert one(logic([raw("x1@blocked.example")]))[0].topic == FILTERED
    source.changes += [
        Change("domain", "blocked.example", True),
        Change("email", "vip@example.com", True),
    ]
    clock.now += 1.0  # not yet due: still the old list
    assert one(logic([raw("x2@blocked.example")]))[0].topic == FILTERED
    clock.now += 1.5
    outs = one(logic([raw("x3@mail.blocked.example"), raw("VIP@example.com")]))
    assert [o.headers["reason"] for o in outs] == ["suppressed_domain", "suppressed_email"]
    source.changes.append(Change("email", "vip@example.com", False))  # lifted
    clock.now += 2.5
    assert one(logic([raw("vip@example.com")]))[0].topic == FILTERED
    assert source.polls == 3


BOSS = {"role_accounts": ["boss"], "reject_role_accounts": True}


@pytest.mark.parametrize(
    ("policy", "email", "reason"),
    [
        ({}, "info@acme.example", None),
        ({"reject_role_accounts": True}, "info@acme.example", "role_account"),
        ({"reject_role_accounts": True}, "Sales+leads@acme.example", "role_account"),
        ({"reject_free_providers": True}, "jane@gmail.com", "free_provider"),
        ({"blocked_domains": ["acme.example"]}, "jane@eu.acme.example", "blocked_domain"),
        ({"blocked_tlds": [".zip"]}, "jane@files.zip", "blocked_domain"),
        (BOSS, "boss@x.example", "role_account"),
        (BOSS, "info@x.example", None),
    ],
)
def test_policy(
    registry: FakeRegistry,
    source: FakeSuppressionSource,
    clock: Clock,
    policy: dict[str, Any],
    email: str,
    reason: str | None,
) -> None:
    (out,) = one(make(registry, source, clock, **policy)([raw(email)]))
    if reason is None:
        assert out.topic == FILTERED
    else:
        assert out.headers == {"reason": reason}


def test_flags_pass_through_by_default(
    registry: FakeRegistry, source: FakeSuppressionSource, clock: Clock
) -> None:
    outs = one(make(registry, source, clock)([raw("info@gmail.com"), raw("jane@acme.example")]))
    flags = [(o.value["role_account"], o.value["free_provider"]) for o in outs if o.value]
    assert flags == [(True, True), (False, False)]
    assert registry.rows["info@gmail.com"].role_account


def test_rejection_order_blocked_before_suppressed_before_role(
    registry: FakeRegistry, source: FakeSuppressionSource, clock: Clock
) -> None:
    source.changes.append(Change("email", "info@acme.example", True))
    logic = make(registry, source, clock, reject_role_accounts=True, blocked_tlds=["zip"])
    outs = one(logic([raw("info@acme.example"), raw("info@acme.zip"), raw("sales@acme.example")]))
    assert [o.headers["reason"] for o in outs] == [
        "suppressed_email",
        "blocked_domain",
        "role_account",
    ]
    assert registry.calls == 0


def test_registry_outage_asks_for_a_retry(
    registry: FakeRegistry, source: FakeSuppressionSource, clock: Clock
) -> None:
    registry.down = True
    with pytest.raises(RetryLater):
        make(registry, source, clock)([raw("jane@example.com")])


def test_rejected_keeps_the_submitted_fields(
    registry: FakeRegistry, source: FakeSuppressionSource, clock: Clock
) -> None:
    rec = raw("bad@", first_name="  JANE ", consent={"granted": True, "method": "checkbox"})
    (out,) = one(make(registry, source, clock)([rec]))
    assert out.value is not None
    assert out.value["first_name"] == "  JANE "
    assert out.value["consent"] == {"granted": True, "method": "checkbox"}
    assert out.value["email"] == "bad@"
