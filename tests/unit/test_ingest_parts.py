"""Ingest parts without I/O: the body-limit and request-context middleware (driven as raw
ASGI), the contact model, the Email Bison payload mapping, client IPs, error mapping."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from leadstream_ingest.bison import parse_delivery
from leadstream_ingest.body_limit import BodyLimitMiddleware
from leadstream_ingest.client_ip import client_ip
from leadstream_ingest.contacts import (
    ContactBatchIn,
    ContactIn,
    ContactsBody,
    RequestContext,
    contact_event,
    contact_key,
    event_ids,
)
from leadstream_ingest.errors import (
    Conflict,
    InvalidInput,
    MalformedRequest,
    TooLarge,
    Unauthenticated,
)
from leadstream_ingest.problems import status_of
from leadstream_ingest.request_context import masked_path, masked_query, request_id_of

Message = dict[str, Any]


def scope(path: str = "/v1/contacts", headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": headers or [],
        "query_string": b"",
        "client": ("127.0.0.1", 5000),
    }


def run_asgi(
    app: Callable[
        [dict, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
        Awaitable[None],
    ],
    sc: dict,
    chunks: list[bytes],
) -> tuple[list[Message], int]:
    """Drive an ASGI app; return what it sent and how many body chunks it read."""
    sent: list[Message] = []
    reads = 0

    async def receive() -> Message:
        nonlocal reads
        i = reads
        reads += 1
        if i < len(chunks):
            return {"type": "http.request", "body": chunks[i], "more_body": i < len(chunks) - 1}
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(sc, receive, send))
    return sent, reads


async def reading_app(
    sc: dict, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
) -> None:
    total = 0
    while True:
        m = await receive()
        total += len(m.get("body", b""))
        if not m.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(total).encode()})


def test_content_length_over_the_limit_is_refused_before_reading() -> None:
    app = BodyLimitMiddleware(reading_app, default=100, limits={"/v1/uploads": 10_000})
    sent, reads = run_asgi(app, scope(headers=[(b"content-length", b"101")]), [b"x" * 101])
    assert reads == 0
    assert sent[0]["status"] == 413
    body = json.loads(sent[1]["body"])
    assert body["error"] == "body_too_large"
    assert "exceeds 100 bytes" in body["reason"]


def test_streamed_body_over_the_limit_is_413_at_the_crossing_chunk() -> None:
    app = BodyLimitMiddleware(reading_app, default=100, limits={})
    sent, reads = run_asgi(app, scope(), [b"x" * 60, b"x" * 60, b"x" * 60, b"x" * 60])
    assert reads == 2  # stopped at the chunk that crossed the limit
    assert sent[0]["status"] == 413
    assert len(sent) == 2


def test_limits_per_path_prefix() -> None:
    app = BodyLimitMiddleware(reading_app, default=100, limits={"/v1/uploads": 1000})
    sent, _ = run_asgi(app, scope("/v1/uploads"), [b"x" * 500])
    assert (sent[0]["status"], sent[1]["body"]) == (200, b"500")
    assert app.limit_for("/v1/contacts") == 100


def test_invalid_content_length_is_400() -> None:
    app = BodyLimitMiddleware(reading_app, default=100, limits={})
    sent, reads = run_asgi(app, scope(headers=[(b"content-length", b"-5")]), [b""])
    assert (sent[0]["status"], reads) == (400, 0)


def test_request_ids_are_accepted_only_when_sane() -> None:
    assert request_id_of(b"abc-123.X:y_z") == ("abc-123.X:y_z", True)
    for bad in (b"", b"has space", b"x" * 129, "é".encode(), b"<script>"):
        generated, supplied = request_id_of(bad)
        assert not supplied
        assert len(generated) == 32
    assert request_id_of(None)[1] is False


def test_secrets_are_masked_in_logged_paths_and_queries() -> None:
    assert masked_path("/v1/webhooks/bison/s3cr3t") == "/v1/webhooks/bison/***"
    assert masked_path("/v1/jobs/abc") == "/v1/jobs/abc"
    assert (
        masked_query(b"limit=5&api_key=zzz&token=t") == "limit=5&api_key=%2A%2A%2A&token=%2A%2A%2A"
    )
    assert masked_query(b"") is None


def test_client_ip_trusts_forwarded_for_only_from_trusted_proxies() -> None:
    forwarded = [(b"x-forwarded-for", b"6.6.6.6, 1.2.3.4, 10.0.0.2")]
    sc = scope(headers=forwarded) | {"client": ("10.0.0.1", 1)}
    assert client_ip(sc, ("10.0.0.1", "10.0.0.2")) == "1.2.3.4"
    assert client_ip(sc, ()) == "10.0.0.1"
    assert client_ip(scope(headers=forwarded), ("10.0.0.1",)) == "127.0.0.1"


# ------------------------------------------------------------------ contacts

BODY: TypeAdapter[ContactIn | ContactBatchIn] = TypeAdapter(ContactsBody)


def test_single_and_batch_bodies_are_told_apart() -> None:
    assert isinstance(BODY.validate_python({"email": "a@b.c"}), ContactIn)
    assert isinstance(BODY.validate_python({"contacts": [{"email": "a@b.c"}]}), ContactBatchIn)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({}, "email"),
        ({"email": "no-at-sign"}, "email"),
        ({"email": "a@b.c", "unknown": 1}, "unknown"),
        ({"email": "a@b.c", "tags": ["x"] * 51}, "tags"),
        ({"email": "a@" + "b" * 320}, "email"),
        ({"contacts": []}, "contacts"),
        ({"contacts": [{"email": "a@b.c"}] * 1001}, "contacts"),
        ({"contacts": [{"email": "a@b.c"}, {"email": "bad"}]}, "contacts.1.email"),
    ],
)
def test_invalid_contacts_name_the_field(body: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as err:
        BODY.validate_python(body)
    locs = [
        ".".join(str(p) for p in e["loc"] if p not in ("single", "batch"))
        for e in err.value.errors()
    ]
    assert any(loc.startswith(where) for loc in locs), locs


def test_contact_event_carries_request_context_and_key() -> None:
    contact = ContactIn.model_validate(
        {
            "email": "  Jane.Doe@Example.COM ",
            "custom_fields": {"age": 42, "vip": True},
            "source_details": {"utm_source": "google"},
            "consent": {"granted": True, "method": "checkbox"},
        }
    )
    ctx = RequestContext("r1", "key_9", "1.2.3.4", "ua", "https://ref")
    event = contact_event(contact, event_id="e1", job_id=None, ctx=ctx, event_time=5)
    assert event["email"] == "Jane.Doe@Example.COM"
    assert contact_key(event["email"]) == "jane.doe@example.com"
    assert event["custom_fields"] == {"age": "42", "vip": "true"}
    details = event["source_details"]
    assert (details["utm_source"], details["ip_address"], details["api_key_id"]) == (
        "google",
        "1.2.3.4",
        "key_9",
    )
    assert event["consent"]["granted"] is True
    assert event_ids(2, seed="k:1") == event_ids(2, seed="k:1") != event_ids(2, seed="k:2")


# ------------------------------------------------------------------ Email Bison webhooks

REPLY = {
    "event": {"type": "LEAD_REPLIED", "name": "Lead Replied", "workspace_id": 12},
    "data": {
        "lead": {"id": 77, "email": "Lead@Example.com"},
        "campaign": {"id": "5", "name": "Q4"},
        "scheduled_email": {"id": 901},
        "campaign_event": {"id": 3301, "type": "replied", "created_at": "2026-11-20T10:00:00Z"},
        "reply": {"id": 55, "text_body": "Yes please", "interested": True, "automated_reply": 0},
    },
}


def test_webhook_payload_maps_to_a_bison_event() -> None:
    body = json.dumps(REPLY).encode()
    d = parse_delivery(body, now_ms=1)
    assert d.dedupe_key == "12|lead_replied|901|3301|55"
    assert d.key == "lead@example.com"
    r = d.record
    assert (r["event_type"], r["workspace_id"], r["lead_id"], r["campaign_id"]) == (
        "lead_replied",
        "12",
        "77",
        "5",
    )
    assert (r["interested"], r["automated_reply"], r["reply_text"]) == (True, False, "Yes please")
    assert r["occurred_at"] == int(datetime(2026, 11, 20, 10, tzinfo=UTC).timestamp() * 1000)
    assert json.loads(r["payload"]) == REPLY
    assert parse_delivery(body, now_ms=2).event_id == d.event_id  # a retry is the same event


def test_webhook_natural_key_distinguishes_replies() -> None:
    other = json.loads(json.dumps(REPLY))
    other["data"]["reply"]["id"] = 56
    a = parse_delivery(json.dumps(REPLY).encode(), now_ms=1)
    b = parse_delivery(json.dumps(other).encode(), now_ms=1)
    assert a.event_id != b.event_id


def test_webhook_without_ids_is_keyed_by_its_body() -> None:
    body = b'{"event": {"type": "EMAIL_ACCOUNT_ADDED", "workspace_id": 1}, "data": {}}'
    d = parse_delivery(body, now_ms=1)
    assert d.key == "1"
    assert d.dedupe_key.startswith("1|email_account_added|||")
    assert d.record["email"] is None


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", MalformedRequest),
        (b"[]", InvalidInput),
        (b'{"event": {}}', InvalidInput),
        (b'{"event": {"type": 5}}', InvalidInput),
    ],
)
def test_bad_webhook_bodies(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_delivery(body, now_ms=1)


def test_domain_errors_map_to_statuses() -> None:
    assert status_of(MalformedRequest("x")) == 400
    assert status_of(Unauthenticated("x")) == 401
    assert status_of(Conflict("x")) == 409
    assert status_of(TooLarge("x")) == 413
    assert status_of(InvalidInput("x")) == 422


@pytest.mark.parametrize(
    "path",
    [
        "/v1/webhooks/bison/s3cr3t",
        "/v1/webhooks/bison/s3cr3t/more",
        "/v1/webhooks//x",
        "/v1/webhooks/",
        "/v1/webhooksx/a/b",
        "/v2/webhooks/a/b",
        "/v1/registrations",
        "",
        "//v1/webhooks/a/b",
    ],
)
def test_masked_path_is_the_pattern_substitution(path: str) -> None:
    assert masked_path(path) == re.sub(r"^(/v1/webhooks/[^/]+/)[^/]+", r"\1***", path)
