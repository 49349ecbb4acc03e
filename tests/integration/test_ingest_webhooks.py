"""The Email Bison webhook receiver on the real servers: token checked in constant time,
deliveries deduplicated by their natural key, one BisonEvent per event on bison.events,
answered well inside Email Bison's 15 s."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from leadstream.infra import Stack
from tests.integration.test_ingest_fixtures import WEBHOOK_SECRET, World, running_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[World]:
    with running_world(stack) as w:
        yield w


def reply(workspace: int = 7) -> dict[str, Any]:
    return {
        "event": {
            "type": "LEAD_REPLIED",
            "name": "Lead Replied",
            "instance_url": "https://send.example",
            "workspace_id": workspace,
            "workspace_name": "Agency",
        },
        "data": {
            "lead": {"id": 1234, "email": f"Lead.{uuid.uuid4().hex[:6]}@Example.com"},
            "campaign": {"id": 55, "name": "Q4 auto"},
            "scheduled_email": {"id": int(time.time() * 1000) % 10**9},
            "campaign_event": {"id": 9001, "type": "replied", "created_at": "2026-11-20T10:00:00Z"},
            "reply": {"id": 77, "text_body": "Interested, call me", "interested": True},
        },
    }


def post(w: World, body: object, token: str = WEBHOOK_SECRET) -> httpx.Response:
    return w.client.post(f"/v1/webhooks/bison/{token}", content=json.dumps(body).encode())


def test_a_delivery_becomes_one_event_and_retries_are_duplicates(world: World) -> None:
    payload = reply()
    began = time.monotonic()
    first = post(world, payload)
    assert time.monotonic() - began < 5
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "accepted"
    event_id = first.json()["event_id"]
    again = post(world, payload)  # Email Bison retrying the same delivery
    assert again.json() == {**first.json(), "status": "duplicate"}
    other = copy.deepcopy(payload)
    other["data"]["reply"]["id"] = 78  # another reply to the same email: another event
    assert post(world, other).json()["status"] == "accepted"
    events = [e for e in world.decoded("bison.events") if e.value["event_id"] == event_id]
    assert len(events) == 1
    e = events[0]
    assert e.key == payload["data"]["lead"]["email"].lower().encode()
    assert (e.value["event_type"], e.value["workspace_id"], e.value["reply_id"]) == (
        "lead_replied",
        "7",
        "77",
    )
    assert e.value["interested"] is True
    assert e.value["source"] == "bison:webhook"
    assert json.loads(e.value["payload"]) == payload
    # Not authenticated by an API key; the request log never shows the token.
    assert "api_key_id" not in first.json()


def test_wrong_token_bad_json_and_no_event_type(world: World) -> None:
    r = post(world, reply(), token="not-the-secret")
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_webhook_token"
    r = world.client.post(f"/v1/webhooks/bison/{WEBHOOK_SECRET}", content=b"{oops")
    assert (r.status_code, r.json()["error"]) == (400, "bad_json")
    r = post(world, {"data": {}})
    assert (r.status_code, r.json()["error"]) == (422, "bad_webhook")
    r = world.client.post(
        f"/v1/webhooks/bison/{WEBHOOK_SECRET}",
        content=b"x" * (world.settings.webhook_max_body_bytes + 1),
    )
    assert (r.status_code, r.json()["error"]) == (413, "body_too_large")


def test_webhooks_are_off_without_a_secret(stack: Stack) -> None:
    with running_world(stack, bison_webhook_secret=None) as w:
        r = post(w, reply(), token="anything")
        assert (r.status_code, r.json()["error"]) == (404, "webhooks_disabled")
