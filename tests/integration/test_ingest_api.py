"""The ingest API on the real servers: a 202 means the events are on the topic, every bad
input gets its 4xx with a reason, keys and scopes, object-level authorization, idempotency,
request ids, health, readiness and metrics."""

from __future__ import annotations

import dataclasses
import json
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from leadstream.db import make_engine
from leadstream.db.idempotency import ClaimOutcome, IdempotencyStore
from leadstream.infra import Stack
from leadstream.jobs import JobState
from tests.integration.test_ingest_fixtures import (
    Server,
    World,
    api_keys,
    ingest_world,
    running_world,
)
from tests.support.kafka import produce

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[World]:
    with running_world(stack) as w:
        yield w


def email() -> str:
    return f"Person.{uuid.uuid4().hex[:8]}@Example.com"


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code, body
    assert body["reason"]
    assert body["request_id"] == r.headers["x-request-id"]
    text = r.text.lower()
    assert "traceback" not in text
    assert "select " not in text
    assert "sqlalchemy" not in text
    return body


# ------------------------------------------------------------------ 202 = on the topic


def test_single_contact_is_on_the_topic_when_answered(world: World) -> None:
    address = "  " + email() + " "
    r = world.client.post(
        "/v1/contacts",
        json={"email": address, "first_name": "Ann", "tags": ["auto"]},
        headers={
            **world.keys.auth(world.keys.ingest),
            "User-Agent": "pytest-agent",
            "Referer": "https://forms.example/x",
        },
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["job_id"] is None
    assert body["accepted"] == 1
    assert body["request_id"] == r.headers["x-request-id"]
    # Read straight away: the 202 came after the broker's ack, so the event is there.
    events = [e for e in world.decoded("contacts.raw") if e.value["event_id"] in body["event_ids"]]
    assert len(events) == 1
    e = events[0]
    assert e.key == address.strip().lower().encode()
    assert e.value["email"] == address.strip()
    assert e.value["request_id"] == body["request_id"]
    assert e.value["source"] == "api"
    assert e.value["tags"] == ["auto"]
    details = e.value["source_details"]
    assert details["api_key_id"] == world.keys.ingest_id
    assert details["user_agent"] == "pytest-agent"
    assert details["referrer"] == "https://forms.example/x"
    assert details["ip_address"] == "127.0.0.1"
    assert "job_id" not in e.headers


def test_batch_creates_a_sealed_job_and_every_contact_is_on_the_topic(world: World) -> None:
    contacts = [{"email": email(), "company": f"C{i}"} for i in range(250)]
    r = world.client.post(
        "/v1/contacts",
        json={"contacts": contacts, "name": "spring list"},
        headers=world.keys.auth(world.keys.ingest),
    )
    assert r.status_code == 202, r.text
    body = r.json()
    job_id = body["job_id"]
    assert body["accepted"] == 250
    assert len(set(body["event_ids"])) == 250
    raw = [e for e in world.decoded("contacts.raw") if e.value["job_id"] == job_id]
    assert sorted(e.value["event_id"] for e in raw) == sorted(body["event_ids"])
    assert all(e.headers["job_id"] == job_id.encode() for e in raw)
    assert sorted(e.value["email"] for e in raw) == sorted(c["email"] for c in contacts)
    job_events = [e for e in world.decoded("jobs.events") if e.key == job_id.encode()]
    assert [(e.value["event_type"], e.value["expected_total"]) for e in job_events] == [
        ("created", None),
        ("sealed", 250),
    ]
    assert job_events[1].value["kind"] == "batch"
    assert job_events[1].value["name"] == "spring list"
    got = world.client.get(f"/v1/jobs/{job_id}", headers=world.keys.auth(world.keys.ingest))
    assert got.status_code == 200
    assert got.json()["expected_total"] == 250
    assert got.json()["kind"] == "batch"


# ------------------------------------------------------------------ bad input


def test_bad_json_is_400_with_a_reason(world: World) -> None:
    r = world.client.post(
        "/v1/contacts",
        content=b'{"email": "a@b.c",',
        headers={**world.keys.auth(world.keys.ingest), "content-type": "application/json"},
    )
    body = assert_error(r, 400, "malformed_json")
    assert "JSON" in body["reason"]


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"first_name": "x"}, "email"),
        ({"email": "a@b.c", "surprise": 1}, "surprise"),
        ({"contacts": []}, "contacts"),
        ({"contacts": [{"email": "a@b.c"}] * 1001}, "contacts"),
        ({"contacts": [{"email": "a@b.c"}, {"email": "bad"}]}, "contacts.1.email"),
    ],
)
def test_invalid_contacts_are_422_naming_the_field(
    world: World, payload: dict[str, Any], where: str
) -> None:
    r = world.client.post("/v1/contacts", json=payload, headers=world.keys.auth(world.keys.ingest))
    body = assert_error(r, 422, "invalid_request")
    assert any(
        e["loc"].split(".", 1)[-1].startswith(where) or where in e["loc"] for e in body["errors"]
    )
    assert all("input" not in e for e in body["errors"])  # never echo the submitted data


def test_too_many_contacts_over_the_configured_limit(stack: Stack) -> None:
    with running_world(stack, max_batch_contacts=10) as w:
        payload = {"contacts": [{"email": email()} for _ in range(11)]}
        r = w.client.post("/v1/contacts", json=payload, headers=w.keys.auth(w.keys.ingest))
        body = assert_error(r, 422, "too_many_contacts")
        assert "at most 10" in body["reason"]


def test_oversized_body_is_413_before_it_is_read(world: World) -> None:
    limit = world.settings.max_body_bytes
    with socket.create_connection(("127.0.0.1", world.server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/contacts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {world.keys.ingest}\r\n".encode()
            + f"Content-Length: {limit * 20}\r\n\r\n".encode()
            + b'{"email": '
        )
        began = time.monotonic()
        response = sock.recv(65536)
        assert time.monotonic() - began < 3  # answered without waiting for the 100 MB
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b"body_too_large" in response


def test_chunked_body_over_the_limit_is_413(world: World) -> None:
    limit = world.settings.max_body_bytes

    def chunks() -> Any:
        yield b'{"email": "a@b.c", "first_name": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    r = world.client.post(
        "/v1/contacts",
        content=chunks(),
        headers={**world.keys.auth(world.keys.ingest), "content-type": "application/json"},
    )
    assert_error(r, 413, "body_too_large")


# ------------------------------------------------------------------ keys and scopes


def test_missing_invalid_and_revoked_keys_are_401(world: World) -> None:
    body = {"email": email()}
    r = world.client.post("/v1/contacts", json=body)
    assert_error(r, 401, "missing_api_key")
    assert r.headers["www-authenticate"] == "Bearer"
    r = world.client.post("/v1/contacts", json=body, headers={"Authorization": "Basic eDp5"})
    assert_error(r, 401, "missing_api_key")
    r = world.client.post("/v1/contacts", json=body, headers=world.keys.auth("lsk_" + "x" * 43))
    assert_error(r, 401, "invalid_api_key")
    r = world.client.post("/v1/contacts", json=body, headers=world.keys.auth(world.keys.revoked))
    assert_error(r, 401, "revoked_api_key")


def test_wrong_scope_is_403(world: World) -> None:
    r = world.client.get("/v1/admin/api-keys", headers=world.keys.auth(world.keys.ingest))
    body = assert_error(r, 403, "missing_scope")
    assert "admin" in body["reason"]
    ok = world.client.get("/v1/admin/api-keys", headers=world.keys.auth(world.keys.admin))
    assert ok.status_code == 200
    listed = {k["key_id"]: k for k in ok.json()["keys"]}
    assert listed[world.keys.ingest_id]["scopes"] == ["ingest"]
    assert "token" not in ok.text
    assert world.keys.ingest not in ok.text


def test_a_job_is_visible_only_to_its_key_and_admins(world: World) -> None:
    r = world.client.post(
        "/v1/contacts",
        json={"contacts": [{"email": email()}]},
        headers=world.keys.auth(world.keys.ingest),
    )
    job_id = r.json()["job_id"]
    mine = world.client.get(f"/v1/jobs/{job_id}", headers=world.keys.auth(world.keys.ingest))
    assert mine.status_code == 200
    theirs = world.client.get(f"/v1/jobs/{job_id}", headers=world.keys.auth(world.keys.other))
    assert_error(theirs, 404, "job_not_found")
    events = world.client.get(
        f"/v1/jobs/{job_id}/events", headers=world.keys.auth(world.keys.other)
    )
    assert_error(events, 404, "job_not_found")
    admin = world.client.get(f"/v1/jobs/{job_id}", headers=world.keys.auth(world.keys.admin))
    assert admin.status_code == 200
    listed = world.client.get("/v1/jobs", headers=world.keys.auth(world.keys.other)).json()
    assert job_id not in [j["job_id"] for j in listed["jobs"]]
    listed = world.client.get("/v1/jobs", headers=world.keys.auth(world.keys.ingest)).json()
    assert job_id in [j["job_id"] for j in listed["jobs"]]
    missing = world.client.get("/v1/jobs/nope", headers=world.keys.auth(world.keys.admin))
    assert_error(missing, 404, "job_not_found")


def test_job_progress_streams_as_server_sent_events(world: World) -> None:
    r = world.client.post(
        "/v1/contacts",
        json={"contacts": [{"email": email()}]},
        headers=world.keys.auth(world.keys.ingest),
    )
    job_id = r.json()["job_id"]
    with world.client.stream(
        "GET", f"/v1/jobs/{job_id}/events", headers=world.keys.auth(world.keys.ingest), timeout=10
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        seen: list[str] = []
        for line in stream.iter_lines():
            seen.append(line)
            if line.startswith("data:"):
                break
    assert "event: progress" in seen
    assert f'"job_id":"{job_id}"' in seen[-1]


def _publish_state(world: World, state: JobState) -> None:
    topic = world.settings.topic("jobs.state")
    produce(
        world.settings,
        topic,
        [(state.job_id.encode(), world.serde.serialize(state.to_record(), topic), None)],
    )


def test_job_endpoints_show_the_trackers_state(world: World) -> None:
    r = world.client.post(
        "/v1/contacts",
        json={"contacts": [{"email": email()} for _ in range(4)]},
        headers=world.keys.auth(world.keys.ingest),
    )
    job_id = r.json()["job_id"]
    now = int(time.time() * 1000)
    state = JobState(
        job_id=job_id,
        status="processing",
        started_at=now - 5000,
        updated_at=now,
        event_time=now,
        event_id=f"state-{job_id}-1",
        kind="batch",
        expected_total=4,
        counts={"contacts.raw": 4, "contacts.rejected": 1, "contacts.verified": 2},
        rejected_by_reason={"duplicate": 1},
        verdicts={"deliverable": 2},
        rate_per_s=1.5,
        eta_s=0.7,
    )
    _publish_state(world, state)
    auth = world.keys.auth(world.keys.ingest)
    deadline = time.monotonic() + 20
    while True:
        job = world.client.get(f"/v1/jobs/{job_id}", headers=auth).json()
        if job["counts"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert job["counts"] == {"contacts.raw": 4, "contacts.rejected": 1, "contacts.verified": 2}
    assert (job["received"], job["rejected_by_reason"], job["verdicts"]) == (
        4,
        {"duplicate": 1},
        {"deliverable": 2},
    )
    assert (job["status"], job["rate_per_s"], job["eta_s"]) == ("processing", 1.5, 0.7)
    listed = world.client.get("/v1/jobs", headers=auth).json()["jobs"]
    assert next(j for j in listed if j["job_id"] == job_id)["counts"]["contacts.raw"] == 4

    done = dataclasses.replace(
        state,
        status="completed",
        completed_at=now + 1000,
        updated_at=now + 1000,
        event_id=f"state-{job_id}-2",
        counts={"contacts.raw": 4, "contacts.rejected": 2, "contacts.verified": 2},
    )
    with world.client.stream("GET", f"/v1/jobs/{job_id}/events", headers=auth) as stream:
        _publish_state(world, done)
        lines = []
        for line in stream.iter_lines():
            lines.append(line)
            if line == "event: end":
                break
    assert "event: progress" in lines
    assert lines[-1] == "event: end"
    last = next(json.loads(x[5:]) for x in reversed(lines) if x.startswith("data:"))
    assert (last["status"], last["counts"]["contacts.rejected"]) == ("completed", 2)


# ------------------------------------------------------------------ idempotency


def test_idempotency_key_replays_the_response_and_refuses_another_body(world: World) -> None:
    key = f"idem-{uuid.uuid4().hex}"
    headers = {**world.keys.auth(world.keys.ingest), "Idempotency-Key": key}
    body = {"contacts": [{"email": email()}, {"email": email()}]}
    first = world.client.post("/v1/contacts", json=body, headers=headers)
    assert first.status_code == 202
    # Same body, keys in another order and other whitespace: the same request.
    again = world.client.post("/v1/contacts", json={"contacts": body["contacts"]}, headers=headers)
    assert again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = world.client.post("/v1/contacts", json={"email": email()}, headers=headers)
    body409 = assert_error(other, 409, "idempotency_key_reused")
    assert "different request body" in body409["reason"]
    # Another API key has its own key space.
    theirs = world.client.post(
        "/v1/contacts",
        json={"email": email()},
        headers={**world.keys.auth(world.keys.other), "Idempotency-Key": key},
    )
    assert theirs.status_code == 202
    job_id = first.json()["job_id"]
    raw = [e for e in world.decoded("contacts.raw") if e.value["job_id"] == job_id]
    assert len(raw) == 2  # the replay produced nothing


def test_idempotency_store_claims(world: World) -> None:
    engine = make_engine(world.settings, pool_size=1)
    try:
        store = IdempotencyStore(engine)
        key = uuid.uuid4().hex
        assert store.claim("k", key, "fp1").outcome is ClaimOutcome.CLAIMED
        assert store.claim("k", key, "fp1").outcome is ClaimOutcome.IN_PROGRESS
        assert store.claim("k", key, "fp2").outcome is ClaimOutcome.CONFLICT
        store.release("k", key)
        assert store.claim("k", key, "fp2").outcome is ClaimOutcome.CLAIMED
        store.complete("k", key, 202, {"ok": True})
        replay = store.claim("k", key, "fp2")
        assert (replay.outcome, replay.status_code, replay.response) == (
            ClaimOutcome.REPLAY,
            202,
            {"ok": True},
        )
        stale = IdempotencyStore(engine, lock_timeout=timedelta(seconds=-1))
        key2 = uuid.uuid4().hex
        assert stale.claim("k", key2, "a").outcome is ClaimOutcome.CLAIMED
        assert stale.claim("k", key2, "a").outcome is ClaimOutcome.CLAIMED  # crashed holder
        expired = IdempotencyStore(engine, ttl=timedelta(seconds=-1))
        key3 = uuid.uuid4().hex
        assert expired.claim("k", key3, "a").outcome is ClaimOutcome.CLAIMED
        expired.complete("k", key3, 202, {})
        assert expired.claim("k", key3, "b").outcome is ClaimOutcome.CLAIMED  # past 24 h
        assert expired.purge() >= 1
    finally:
        engine.dispose()


# ------------------------------------------------------------------ request ids, errors, ops


def test_request_ids_are_echoed_or_generated(world: World) -> None:
    r = world.client.get("/healthz", headers={"X-Request-ID": "client-id-123"})
    assert r.headers["x-request-id"] == "client-id-123"
    r = world.client.get("/healthz", headers={"X-Request-ID": "no spaces allowed"})
    assert r.headers["x-request-id"] != "no spaces allowed"
    assert len(r.headers["x-request-id"]) == 32
    r = world.client.post("/v1/contacts", json={}, headers={"X-Request-ID": "err-id-1"})
    assert r.status_code == 401
    assert r.json()["request_id"] == "err-id-1"


def test_unknown_routes_and_methods_answer_json(world: World) -> None:
    assert_error(world.client.get("/v1/nothing"), 404, "not_found")
    assert_error(world.client.delete("/v1/contacts"), 405, "method_not_allowed")


def test_health_readiness_metrics_and_docs(world: World) -> None:
    assert world.client.get("/healthz").json() == {"status": "ok"}
    ready = world.client.get("/readyz")
    assert ready.status_code == 200
    assert set(ready.json()["checks"]) == {"kafka", "postgres", "redis", "schema_registry"}
    world.client.post(
        "/v1/contacts", json={"email": email()}, headers=world.keys.auth(world.keys.ingest)
    )
    metrics = world.client.get("/metrics").text
    assert (
        'leadstream_http_requests_total{method="POST",route="/v1/contacts",status="202"}' in metrics
    )
    assert 'route="/v1/jobs/{job_id}"' in metrics or "leadstream_http_request_seconds" in metrics
    assert world.client.get("/docs").status_code == 200
    spec = world.client.get("/openapi.json").json()
    assert {
        "/v1/contacts",
        "/v1/uploads",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/events",
        "/v1/webhooks/bison/{token}",
    } <= set(spec["paths"])


def test_broken_dependencies_are_503_and_not_ready(stack: Stack) -> None:
    with ingest_world(stack) as good:
        broken = good.model_copy(
            update={
                "kafka_bootstrap": "127.0.0.1:1",
                "redis_url": "redis://127.0.0.1:1/0",
                "producer_message_timeout_ms": 1500,
            }
        )
        with (
            api_keys(broken) as keys,
            Server(broken) as server,
            httpx.Client(base_url=server.url, timeout=30) as client,
        ):
            ready = client.get("/readyz")
            assert ready.status_code == 503
            checks = ready.json()["checks"]
            assert not checks["kafka"]["ok"]
            assert not checks["redis"]["ok"]
            assert checks["postgres"]["ok"]
            began = time.monotonic()
            r = client.post("/v1/contacts", json={"email": email()}, headers=keys.auth(keys.ingest))
            assert_error(r, 503, r.json().get("error", "?"))
            assert r.json()["error"] in ("broker_timeout", "broker_unavailable")
            assert r.headers["retry-after"]
            assert time.monotonic() - began < 15
            batch = {"contacts": [{"email": email()}]}
            r = client.post("/v1/contacts", json=batch, headers=keys.auth(keys.ingest))
            assert r.status_code == 503
            jobs = client.get("/v1/jobs", headers=keys.auth(keys.ingest)).json()["jobs"]
            assert [j["status"] for j in jobs] == ["failed"]  # no orphan "processing" job
