"""Rate limit, circuit breaker, Reacher answer mapping, and the verify logic with fakes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pytest

from leadstream.events import derived_event_id
from leadstream.runtime import Record, RetryLater
from leadstream_verify.domains import DisposableDomains
from leadstream_verify.logic import VerifyLogic
from leadstream_verify.mail import DomainMail, MailStatus
from leadstream_verify.ports import VerificationRecord
from leadstream_verify.reacher import outcome_of
from leadstream_verify.resilience import BreakerState, CircuitBreaker, TokenBucket
from leadstream_verify.verdict import ProviderOutcome, Verdict
from tests.support.clock import Clock


def test_token_bucket() -> None:
    clock = Clock(0.0)
    bucket = TokenBucket(2.0, burst=3, clock=clock)
    assert [bucket.try_take() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time() == pytest.approx(0.5)
    clock.now = 0.5
    assert bucket.try_take()
    assert not bucket.try_take()
    clock.now = 100
    assert sum(bucket.try_take() for _ in range(10)) == 3  # never more than the burst


def test_token_bucket_take_waits() -> None:
    bucket = TokenBucket(50.0, burst=1)

    async def take(n: int) -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(n):
            await bucket.take()
        return loop.time() - start

    assert asyncio.run(take(6)) >= 0.09  # 5 waits of 20 ms after the first token


def test_circuit_breaker() -> None:
    clock = Clock(0.0)
    breaker = CircuitBreaker(failures=3, reset_s=10, clock=clock)
    for _ in range(2):
        breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    clock.now = 10
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # one trial
    assert not breaker.allow()
    breaker.failure()  # the trial failed: open again
    assert breaker.state is BreakerState.OPEN
    clock.now = 20
    assert breaker.allow()
    breaker.success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


@pytest.mark.parametrize(
    ("body", "verdict", "reasons"),
    [
        ({"is_reachable": "safe", "smtp": {"is_deliverable": True}}, Verdict.DELIVERABLE,
         ("mailbox_exists",)),
        ({"is_reachable": "invalid", "smtp": {"is_deliverable": False}}, Verdict.UNDELIVERABLE,
         ("mailbox_not_found",)),
        ({"is_reachable": "invalid", "smtp": {"is_disabled": True}}, Verdict.UNDELIVERABLE,
         ("mailbox_disabled",)),
        ({"is_reachable": "invalid", "syntax": {"is_valid_syntax": False}}, Verdict.UNDELIVERABLE,
         ("invalid_syntax",)),
        ({"is_reachable": "risky", "smtp": {"is_catch_all": True, "has_full_inbox": True},
          "misc": {"is_disposable": True, "is_role_account": True}}, Verdict.RISKY,
         ("catch_all", "mailbox_full", "disposable", "role_account")),
        ({"is_reachable": "unknown"}, None, ("provider_unknown",)),
        ({}, None, ("provider_unknown",)),
    ],
)  # fmt: skip
def test_reacher_outcome(
    body: dict[str, Any], verdict: Verdict | None, reasons: tuple[str, ...]
) -> None:
    assert outcome_of(body) == ProviderOutcome(verdict, reasons)


class FakeLookup:
    def __init__(self, answers: dict[str, DomainMail]) -> None:
        self.answers = answers
        self.asked: list[set[str]] = []

    def lookup_many(self, domains: Collection[str]) -> Mapping[str, DomainMail]:
        self.asked.append(set(domains))
        return {d: self.answers.get(d, DomainMail(MailStatus.NXDOMAIN)) for d in domains}


class FakeStore:
    def __init__(self) -> None:
        self.rows: list[VerificationRecord] = []
        self.down = False

    def record(self, rows: Sequence[VerificationRecord]) -> None:
        if self.down:
            raise RetryLater("db down")
        self.rows.extend(rows)


class FakeVerifier:
    name = "fake"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def verify_many(self, emails: Collection[str]) -> Mapping[str, ProviderOutcome]:
        self.asked += list(emails)
        return {e: ProviderOutcome(Verdict.UNDELIVERABLE, ("mailbox_not_found",)) for e in emails}


def filtered(email: str, **kw: Any) -> Record:
    value = {
        "event_id": f"f-{email}",
        "raw_event_id": f"r-{email}",
        "job_id": None,
        "source": "filter",
        "event_time": 0,
        "request_id": None,
        "contact_id": f"c-{email}",
        "email_normalized": email,
        "domain": email.rpartition("@")[2],
        "phone_e164": None,
        "role_account": False,
        "free_provider": False,
        "email": email.upper(),
        "tags": [],
        "custom_fields": {},
        **kw,
    }
    return Record("contacts.filtered", 0, 0, email.encode(), value, {}, 0)


def test_verify_logic_one_lookup_per_domain_and_stores_before_emitting() -> None:
    lookup = FakeLookup({"acme.example": DomainMail(MailStatus.MX, "mx.acme.example", 300)})
    store = FakeStore()
    logic = VerifyLogic(lookup, store, DisposableDomains(["trash.example"], "v1"))
    batch = [
        filtered("a@acme.example"),
        filtered("b@acme.example", role_account=True),
        filtered("c@gone.example"),
        filtered("d@trash.example"),
        filtered("not-an-email"),
    ]
    outs = [o[0] for o in logic(batch)]
    assert lookup.asked == [{"acme.example", "gone.example", "trash.example"}]
    assert [o.headers["verdict"] for o in outs] == [
        "deliverable",
        "risky",
        "undeliverable",
        "undeliverable",
        "undeliverable",
    ]
    first = outs[0].value
    assert first is not None
    assert first["event_id"] == derived_event_id("verify", "f-a@acme.example")
    assert (first["filtered_event_id"], first["raw_event_id"]) == (
        "f-a@acme.example",
        "r-a@acme.example",
    )
    assert (first["mx_host"], first["disposable_list_version"], first["verifier"]) == (
        "mx.acme.example",
        "v1",
        "builtin",
    )
    assert outs[0].key == "a@acme.example"
    assert [r.verdict for r in store.rows] == [o.headers["verdict"] for o in outs]


def test_verify_logic_consults_the_verifier_only_when_useful() -> None:
    lookup = FakeLookup({"acme.example": DomainMail(MailStatus.MX, "mx.acme.example", 300)})
    verifier = FakeVerifier()
    logic = VerifyLogic(lookup, FakeStore(), DisposableDomains([], "v"), verifier)
    outs = [o[0] for o in logic([filtered("a@acme.example"), filtered("c@gone.example")])]
    assert verifier.asked == ["a@acme.example"]
    assert [o.headers["verdict"] for o in outs] == ["undeliverable", "undeliverable"]
    assert outs[0].value is not None
    assert outs[0].value["verifier"] == "provider:fake"


def test_verify_logic_database_outage_retries() -> None:
    store = FakeStore()
    store.down = True
    logic = VerifyLogic(FakeLookup({}), store, DisposableDomains([], "v"))
    with pytest.raises(RetryLater):
        logic([filtered("a@acme.example")])


class SlowStore(FakeStore):
    """Stores after a pause, on whatever thread calls it."""

    def __init__(self) -> None:
        super().__init__()
        self.finished = False

    def record(self, rows: Sequence[VerificationRecord]) -> None:
        time.sleep(0.05)
        super().record(rows)
        self.finished = True


def test_verify_logic_returns_only_after_the_verdicts_are_stored() -> None:
    store = SlowStore()
    logic = VerifyLogic(FakeLookup({}), store, DisposableDomains([], "v"))
    outs = logic([filtered("a@acme.example"), filtered("b@acme.example")])
    assert store.finished
    assert [r.email_normalized for r in store.rows] == ["a@acme.example", "b@acme.example"]
    assert [o[0].key for o in outs] == ["a@acme.example", "b@acme.example"]
