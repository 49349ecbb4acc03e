"""Ingest's defences without I/O: the body read timeout (driven as raw ASGI with a client
that stalls), NUL refusal, webhook text cleaning, the keyed locks, the throttle's peek."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import ValidationError

from leadstream_ingest.bison import parse_delivery
from leadstream_ingest.body_limit import BodyLimitMiddleware
from leadstream_ingest.contacts import ContactIn, refuse_nul
from leadstream_ingest.errors import MalformedRequest
from leadstream_ingest.ratelimit import LocalBuckets, RatePolicy
from leadstream_ingest.services import KeyedLocks
from tests.unit.test_ingest_parts import reading_app, scope

Message = dict[str, Any]


def run_stalling(app: Any, chunks: list[bytes], stall_s: float) -> tuple[list[Message], int]:
    """Drive ``app`` with a client that sends ``chunks`` and then sends nothing for
    ``stall_s`` (its body is not finished)."""
    sent: list[Message] = []
    reads = 0

    async def receive() -> Message:
        nonlocal reads
        i = reads
        reads += 1
        if i < len(chunks):
            return {"type": "http.request", "body": chunks[i], "more_body": True}
        await asyncio.sleep(stall_s)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope(), receive, send))
    return sent, reads


def test_a_stalled_body_is_408_after_the_read_timeout() -> None:
    app = BodyLimitMiddleware(reading_app, default=1000, limits={}, read_timeout_s=0.05)
    sent, reads = run_stalling(app, [b"x" * 10], stall_s=5)
    assert reads == 2
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    body = json.loads(sent[1]["body"])
    assert body["error"] == "body_timeout"
    assert "10 bytes" in body["reason"]


def test_without_a_timeout_a_body_is_read_to_its_end() -> None:
    app = BodyLimitMiddleware(reading_app, default=1000, limits={})
    sent, _ = run_stalling(app, [b"x" * 10], stall_s=0.05)
    assert sent[0]["status"] == 200  # the disconnect ended the read


def test_the_read_budget_is_the_timeout_then_the_minimum_rate() -> None:
    app = BodyLimitMiddleware(reading_app, default=1000, limits={}, read_timeout_s=10, min_rate=100)
    assert app.read_budget(waited_s=0, received=0) == 10  # the grace
    assert app.read_budget(waited_s=9, received=0) == 1
    assert app.read_budget(waited_s=12, received=1000) == 8  # 10 s earned by 1000 bytes
    assert app.read_budget(waited_s=30, received=100) == 0  # far under the rate: now
    assert app.read_budget(waited_s=5, received=10**9) == 10  # never more than the timeout
    unbounded = BodyLimitMiddleware(reading_app, default=1000, limits={})
    assert unbounded.read_budget(waited_s=1e6, received=0) is None


def test_text_with_nul_is_refused_everywhere_in_a_contact() -> None:
    assert refuse_nul({"a": ["b", ("c",)]}) == {"a": ["b", ("c",)]}
    with pytest.raises(ValueError, match="NUL"):
        refuse_nul({"a": ["b", "c\x00"]})
    with pytest.raises(ValueError, match="NUL"):
        refuse_nul({"k\x00": "v"})
    for bad in (
        {"email": "a\x00@b.cd"},
        {"email": "a@b.cd", "custom_fields": {"k\x00": "v"}},
        {"email": "a@b.cd", "tags": ["x\x00"]},
        {"email": "a@b.cd", "source_details": {"form_id": "\x00"}},
    ):
        with pytest.raises(ValidationError):
            ContactIn.model_validate(bad)


def test_webhook_text_is_cleaned_not_refused() -> None:
    body = (
        b'{"event": {"type": "LEAD\\u0000_REPLIED", "workspace_id": "7\\u0000"},'
        b' "data": {"reply": {"id": "\\ud800x", "text_body": "hi\\u0000"},'
        b' "lead": {"email": " A\\u0000@B.cd "}}}'
    )
    d = parse_delivery(body, now_ms=0)
    assert d.event_type == "lead_replied"
    assert d.record["workspace_id"] == "7"
    assert d.record["reply_id"] == "?x"
    assert d.record["reply_text"] == "hi"
    assert d.record["email"] == "a@b.cd"
    assert "\x00" not in d.dedupe_key
    d.dedupe_key.encode("utf-8")  # storable
    with pytest.raises(MalformedRequest):
        parse_delivery(b"[" * 100_000, now_ms=0)


def test_keyed_locks_serialize_one_key_and_forget_it() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def work(key: str, name: str) -> None:
        async with locks.hold(key):
            order.append(f"{name}+")
            await asyncio.sleep(0.01)
            order.append(f"{name}-")

    async def main() -> None:
        await asyncio.gather(work("k", "a"), work("k", "b"), work("other", "c"))

    asyncio.run(main())
    assert order.index("a-") < order.index("b+")  # same key: one after the other
    assert order.index("c+") < order.index("a-")  # another key: at once
    assert len(locks) == 0


def test_peek_spends_nothing() -> None:
    buckets = LocalBuckets(RatePolicy(limit=2, period_s=60, burst=2))
    for _ in range(5):
        assert buckets.peek("ip", 0).allowed
    assert buckets.decide("ip", 0).allowed
    assert buckets.decide("ip", 0).allowed
    assert not buckets.peek("ip", 0).allowed
    assert buckets.peek("ip", 0).retry_after_header == 30
    assert buckets.peek("other", 0).allowed
