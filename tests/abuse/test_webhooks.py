"""Email Bison webhook abuse: wrong tokens (401, never the secret echoed or logged, guessing
throttled per client address), replays of the same delivery (one event on bison.events,
however the JSON is re-serialized, and when the copies arrive together)."""

from __future__ import annotations

import copy
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.abuse.conftest import assert_clean_error
from tests.integration.test_ingest_fixtures import WEBHOOK_SECRET, Server, World, read_to_end

pytestmark = pytest.mark.integration


def delivery() -> dict[str, Any]:
    unique = int(uuid.uuid4().int % 10**9)
    return {
        "event": {"type": "LEAD_REPLIED", "workspace_id": 7, "workspace_name": "Agency"},
        "data": {
            "lead": {"id": 1234, "email": f"Lead.{uuid.uuid4().hex[:6]}@Example.com"},
            "campaign": {"id": 55, "name": "Q4"},
            "scheduled_email": {"id": unique},
            "campaign_event": {"id": unique + 1, "created_at": "2026-11-20T10:00:00Z"},
            "reply": {"id": unique + 2, "text_body": "yes", "interested": True},
        },
    }


def post(client: httpx.Client, body: bytes, token: str = WEBHOOK_SECRET, **headers: str) -> Any:
    return client.post(f"/v1/webhooks/bison/{token}", content=body, headers=headers)


def events_with(w: World, event_id: str) -> list[dict[str, Any]]:
    return [
        v
        for v in (
            w.serde.deserialize(m.value(), m.topic())
            for m in read_to_end(w.settings, "bison.events")
        )
        if v["event_id"] == event_id
    ]


WRONG_TOKENS = [
    WEBHOOK_SECRET[:-1],  # a prefix
    WEBHOOK_SECRET + "x",  # one character more
    WEBHOOK_SECRET.upper(),
    WEBHOOK_SECRET[:-1] + chr(ord(WEBHOOK_SECRET[-1]) + 1),
    quote(WEBHOOK_SECRET + "\x00"),
    "x" * 256,
    "%00",
    "é" * 10,
]


@pytest.fixture
def guarded(world: World) -> Any:
    """A second server on the same database and topics whose bad-token allowance is small and
    which believes X-Forwarded-For from loopback, so the test can be several clients."""
    settings = world.settings.model_copy(
        update={
            "webhook_bad_token_limit": 3,
            "webhook_bad_token_period_s": 600.0,
            "trusted_proxies": ("127.0.0.1",),
        }
    )
    with (
        Server(settings) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        yield client


def test_wrong_tokens_are_401_and_reveal_nothing(guarded: httpx.Client, world: World) -> None:
    body = json.dumps(delivery()).encode()
    for i, token in enumerate(WRONG_TOKENS):
        # Every guess from its own address: this test is about the answers, not the throttle.
        r = post(guarded, body, token, **{"X-Forwarded-For": f"192.0.2.{i + 1}"})
        error = assert_clean_error(r, 401)
        assert error["error"] == "invalid_webhook_token", (token, r.text)
        assert WEBHOOK_SECRET not in r.text
        assert WEBHOOK_SECRET[:8] not in r.text


def test_token_guessing_is_throttled_per_address_and_logged(
    guarded: httpx.Client, world: World
) -> None:
    body = json.dumps(delivery()).encode()
    guesser = {"X-Forwarded-For": "198.51.100.7"}
    answers = [post(guarded, body, f"guess-{i}", **guesser).status_code for i in range(6)]
    assert answers == [401, 401, 401, 429, 429, 429]
    # Throttled, even the right token is refused: a guesser learns nothing more...
    throttled = post(guarded, body, **guesser, **{"X-Request-ID": "guess-right"})
    error = assert_clean_error(throttled, 429)
    assert error["error"] == "too_many_bad_tokens"
    assert int(throttled.headers["retry-after"]) >= 1
    # ...while Email Bison, from another address, is unaffected.
    ok = post(guarded, body, **{"X-Forwarded-For": "203.0.113.9"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "accepted"
    # Every attempt is in the request log with its error and address, the token masked.
    logs = [
        world.serde.deserialize(m.value(), m.topic())
        for m in read_to_end(world.settings, "audit.requests")
    ]
    mine = [r for r in logs if r["ip_address"] == "198.51.100.7"]
    assert sorted(r["error"] for r in mine) == sorted(
        ["invalid_webhook_token"] * 3 + ["too_many_bad_tokens"] * 4
    )
    assert {r["path"] for r in mine} == {"/v1/webhooks/bison/***"}
    assert not any("guess-" in (r["path"] + (r["query"] or "")) for r in mine)


def test_a_replayed_delivery_is_one_event(world: World) -> None:
    payload = delivery()
    first = post(world.client, json.dumps(payload).encode())
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "accepted"
    event_id = first.json()["event_id"]
    # The same delivery, re-serialized (key order, spacing) and posted again, twice.
    shuffled = {"data": copy.deepcopy(payload["data"]), "event": payload["event"]}
    for body in (json.dumps(payload).encode(), json.dumps(shuffled, indent=2).encode()):
        again = post(world.client, body)
        assert again.status_code == 200, again.text
        assert again.json() == {**first.json(), "status": "duplicate"}
    assert len(events_with(world, event_id)) == 1


def test_copies_of_a_delivery_arriving_together_are_one_event(world: World) -> None:
    payload = json.dumps(delivery()).encode()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(world.client, payload), range(8)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    statuses = sorted(a.json()["status"] for a in answers)
    assert statuses == ["accepted"] + ["duplicate"] * 7, statuses
    event_id = answers[0].json()["event_id"]
    assert {a.json()["event_id"] for a in answers} == {event_id}
    time.sleep(0.5)  # a second, late copy would be on the topic by now
    assert len(events_with(world, event_id)) == 1
