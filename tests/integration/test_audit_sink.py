"""The audit sink: request logs and audit events into MongoDB (FerretDB), idempotent by
``_id``, exactly once across a SIGKILL and restart of ``leadstream-audit``; MongoDB down is a
retry, not a dead letter; retention by periodic delete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pymongo import MongoClient

from leadstream.infra import Stack
from leadstream.runtime import Record, RetryLater
from leadstream.settings import Settings
from leadstream_audit.config import AuditSettings
from leadstream_audit.documents import (
    AUDIT_EVENTS,
    REQUEST_LOGS,
    audit_event_document,
    request_log_document,
)
from leadstream_audit.handler import make_handler
from leadstream_audit.housekeeping import Housekeeper
from leadstream_audit.store import MongoAuditStore, mongo_client
from tests.integration.test_ingest_fixtures import World, read_to_end, running_world
from tests.support.kafka import produce

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def request_log(event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "job_id": None,
        "source": "ingest",
        "event_time": NOW,
        "request_id": event_id,
        "method": "POST",
        "path": "/v1/contacts",
        "query": None,
        "status": 202,
        "latency_ms": 3.5,
        "ip_address": "10.0.0.1",
        "user_agent": "ua",
        "referrer": None,
        "api_key_id": "key_1",
        "request_bytes": 10,
        "response_bytes": 20,
        "error": None,
        **extra,
    }


def audit_event(event_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "job_id": None,
        "source": "ingest",
        "event_time": NOW,
        "actor": "api-key:key_1",
        "action": "apikey.created",
        "target_type": "api_key",
        "target_id": "key_2",
        "request_id": None,
        "outcome": "ok",
        "details": {"a.b": "dotted", "$x": "dollar"},
    }


# ------------------------------------------------------------------ pure parts


def test_documents_keep_free_form_maps_as_text() -> None:
    doc = audit_event_document(audit_event("e1"), NOW)
    assert doc["_id"] == "e1"
    assert json.loads(doc["details"]) == {"a.b": "dotted", "$x": "dollar"}
    log = request_log_document(request_log("r1", event_time=1_795_000_000_000), NOW)
    assert log["event_time"] == datetime.fromtimestamp(1_795_000_000, UTC)
    assert (log["_id"], log["status"], log["stored_at"]) == ("r1", 202, NOW)


class _Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def insert(self, collection: str, documents: Any) -> int:
        self.calls.append((collection, [d["_id"] for d in documents]))
        return len(documents)


def test_handler_bulk_inserts_per_collection_and_outputs_nothing() -> None:
    settings = Settings(topic_prefix="p.")
    sink = _Sink()
    handle = make_handler(sink, settings, clock=lambda: NOW)
    records = [
        Record("p.audit.requests", 0, 1, b"r1", request_log("r1"), {}, 0),
        Record("p.audit.events", 0, 1, b"e1", audit_event("e1"), {}, 0),
        Record("p.audit.requests", 1, 7, b"r2", request_log("r2"), {}, 0),
    ]
    assert handle(records) == [[], [], []]
    assert sorted(sink.calls) == [(AUDIT_EVENTS, ["e1"]), (REQUEST_LOGS, ["r1", "r2"])]


# ------------------------------------------------------------------ MongoDB


@pytest.fixture
def mongo(stack: Stack) -> Iterator[MongoAuditStore]:
    cfg = stack.settings
    name = f"t_audit_{uuid.uuid4().hex[:8]}"
    store = MongoAuditStore(mongo_client(f"mongodb://{cfg.host}:{cfg.mongo_port}/", 5000), name)
    try:
        yield store
    finally:
        store.client.drop_database(name)
        store.close()


def test_inserts_are_idempotent_by_id(mongo: MongoAuditStore) -> None:
    docs = [request_log_document(request_log(f"r{i}"), NOW) for i in range(5)]
    assert mongo.insert(REQUEST_LOGS, docs[:3]) == 3
    assert mongo.insert(REQUEST_LOGS, docs) == 2  # r0..r2 again: already stored, not an error
    assert mongo.db[REQUEST_LOGS].count_documents({}) == 5
    stored = mongo.db[AUDIT_EVENTS]
    mongo.insert(AUDIT_EVENTS, [audit_event_document(audit_event("e1"), NOW)])
    assert json.loads(stored.find_one({"_id": "e1"})["details"])["a.b"] == "dotted"


def test_a_document_the_server_refuses_raises_for_the_runtime_to_isolate(
    mongo: MongoAuditStore,
) -> None:
    bad = {**request_log_document(request_log("bad"), NOW), "x": {"a.b": 1}}
    with pytest.raises(ValueError, match="refused"):
        mongo.insert(REQUEST_LOGS, [bad, request_log_document(request_log("ok"), NOW)])


def test_mongodb_down_is_retry_later() -> None:
    store = MongoAuditStore(mongo_client("mongodb://127.0.0.1:1/", 300), "nowhere")
    try:
        with pytest.raises(RetryLater, match="MongoDB unavailable"):
            store.insert(REQUEST_LOGS, [request_log_document(request_log("r"), NOW)])
    finally:
        store.close()


def test_indexes_and_retention_delete(mongo: MongoAuditStore) -> None:
    settings = AuditSettings(request_logs_retention_days=30, audit_events_retention_days=30)
    keeper = Housekeeper(mongo, settings)
    mongo.ensure_indexes()
    names = {i["name"] for i in mongo.db[REQUEST_LOGS].list_indexes()}
    assert {"event_time_-1", "api_key_id_1_event_time_-1", "path_1_event_time_-1"} <= names
    old = request_log_document(request_log("old", event_time=NOW - timedelta(days=31)), NOW)
    new = request_log_document(request_log("new", event_time=NOW - timedelta(days=29)), NOW)
    mongo.insert(REQUEST_LOGS, [old, new])
    purged = "leadstream_audit_purged_total"
    before = REGISTRY.get_sample_value(purged, {"collection": REQUEST_LOGS}) or 0.0
    assert keeper.purge_once(NOW) == {REQUEST_LOGS: 1, AUDIT_EVENTS: 0}
    assert REGISTRY.get_sample_value(purged, {"collection": REQUEST_LOGS}) == before + 1
    assert [d["_id"] for d in mongo.db[REQUEST_LOGS].find()] == ["new"]


# ------------------------------------------------------------------ the service, end to end


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[World]:
    with running_world(stack) as w:
        yield w
        with MongoClient(w.settings.mongo_url) as client:
            client.drop_database(w.settings.mongo_database)


def start_audit(w: World) -> subprocess.Popen[bytes]:
    s = w.settings
    env = {
        **os.environ,
        "LEADSTREAM_ENV": "test",
        "LEADSTREAM_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "LEADSTREAM_SCHEMA_REGISTRY_URL": s.schema_registry_url,
        "LEADSTREAM_MONGO_URL": s.mongo_url,
        "LEADSTREAM_MONGO_DATABASE": s.mongo_database,
        "LEADSTREAM_TOPIC_PREFIX": s.topic_prefix,
        "LEADSTREAM_METRICS_PORT": "0",
        "LEADSTREAM_BULK_SIZE": "20",
        "LEADSTREAM_RUNTIME_INSTANCE_ID": "audit-test-0",
        "LEADSTREAM_RUNTIME_SESSION_TIMEOUT_MS": "6000",
        "LEADSTREAM_LOG_LEVEL": "WARNING",
    }
    code = "from leadstream_audit.app import main; main()"
    return subprocess.Popen([sys.executable, "-c", code], env=env)


def stored(w: World, request_ids: set[str]) -> list[dict[str, Any]]:
    with MongoClient(w.settings.mongo_url, tz_aware=True) as client:
        coll = client[w.settings.mongo_database][REQUEST_LOGS]
        return [d for d in coll.find({}) if d["request_id"] in request_ids]


def wait_for(w: World, request_ids: set[str], count: int, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        docs = stored(w, request_ids)
        if len(docs) >= count or time.monotonic() > deadline:
            return docs
        time.sleep(0.5)


def send(w: World, tag: str, n: int) -> set[str]:
    ids = set()
    for i in range(n):
        rid = f"{tag}-{i}"
        ids.add(rid)
        if i % 3 == 0:  # a 401 is logged too
            w.client.post("/v1/contacts", json={"email": "x@y.z"}, headers={"X-Request-ID": rid})
        else:
            w.client.post(
                "/v1/contacts",
                json={"email": f"{rid}@example.com"},
                headers={**w.keys.auth(w.keys.ingest), "X-Request-ID": rid, "User-Agent": "t"},
            )
    return ids


def test_request_logs_land_once_across_a_restart_of_the_audit_service(world: World) -> None:
    tag = f"aud{uuid.uuid4().hex[:6]}"
    first = send(world, tag + "a", 30)
    audit = start_audit(world)
    try:
        # SIGKILL as soon as the first documents are in: mid-run (batches of 20).
        assert wait_for(world, first, 1), "the audit service stored nothing"
        audit.send_signal(signal.SIGKILL)
        audit.wait(10)
        second = send(world, tag + "b", 45)  # logged while the sink is down
        # Redeliver events as they are on the topic (same event ids): stored once.
        again = read_to_end(world.settings, "audit.requests")[:20]
        produce(
            world.settings,
            world.settings.topic("audit.requests"),
            [(m.key(), m.value(), None) for m in again],
        )
        audit = start_audit(world)
        everything = first | second
        docs = wait_for(world, everything, len(everything))
        time.sleep(2)  # anything extra would show up now
        docs = stored(world, everything)
    finally:
        audit.send_signal(signal.SIGTERM)
        audit.wait(30)
    assert len(docs) == len(everything)
    assert {d["request_id"] for d in docs} == everything
    assert len({d["_id"] for d in docs}) == len(docs)
    by_id = {d["request_id"]: d for d in docs}
    unauthorized = by_id[f"{tag}a-0"]
    assert (unauthorized["status"], unauthorized["error"], unauthorized["api_key_id"]) == (
        401,
        "missing_api_key",
        None,
    )
    accepted = by_id[f"{tag}a-1"]
    assert (accepted["status"], accepted["path"], accepted["method"]) == (
        202,
        "/v1/contacts",
        "POST",
    )
    assert accepted["api_key_id"] == world.keys.ingest_id
    assert accepted["ip_address"] == "127.0.0.1"
    assert accepted["user_agent"] == "t"
    assert accepted["latency_ms"] > 0
    assert accepted["event_time"].tzinfo is not None
