"""Email Bison sync at the rate limit: 100,000 verified contacts → batch → bison-sync → the
fake Email Bison, against the ideal rate-bound time measured in the same run.

    uv run python -m bench.bison_sync [--contacts 100000] [--rate-per-minute 240]

The fake runs in its own process and enforces ``--rate-per-minute`` per API key over a 60 s
sliding window (429 + Retry-After beyond it); bison-sync is configured with the same rate and
a burst of 1, so it may never go faster than the limit. The batch and bison-sync services run
as their real entrypoints (``python -m leadstream_batch`` / ``leadstream_bison_sync``) in
their own processes, on a fresh database and a fresh topic prefix.

- **requests** — what the fake accepted (upserts of 500, attaches of 500, custom variables);
- **ideal** — ``(requests - 1) / rate``: the time those requests take at exactly the rate;
- **sync time** — from the fake's first accepted request to the timestamp of the last
  ``batches.synced`` record (so the last batch's bookkeeping counts, Kafka start-up does not);
- target: sync time ≤ 1.05 × ideal. End-to-end time (services started → last synced) is
  reported beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from bench.common import append_results, bench_settings
from leadstream.db import make_engine
from leadstream.db.campaigns import CampaignStore, RuleMatch
from leadstream.events import Serde, contact_id, register_schemas
from leadstream.settings import Settings
from leadstream.topics import TopicSettings, apply
from tests.support.databases import scratch_database

ROOT = Path(__file__).resolve().parents[1]
BATCH = 500


def _verified(i: int, run: str) -> dict[str, Any]:
    email = f"firstname.lastname{i}.{run}@example-company{i % 977}.com"
    return {
        "event_id": str(uuid.uuid4()),
        "job_id": "bench-job",
        "source": "verify",
        "event_time": int(time.time() * 1000),
        "raw_event_id": str(uuid.uuid4()),
        "filtered_event_id": str(uuid.uuid4()),
        "contact_id": contact_id(email),
        "email_normalized": email,
        "domain": email.rpartition("@")[2],
        "role_account": False,
        "free_provider": False,
        "email": email,
        "first_name": "Firstname",
        "last_name": f"Lastname{i}",
        "company": f"Example Company {i % 977} Ltd",
        "title": "Head of Operations",
        "country": "GB",
        "tags": ["insurance", "q4"],
        "custom_fields": {"policy_type": "auto", "list": "bench"},
        "verdict": "deliverable",
    }


def _fill(settings: Settings, serde: Serde, n: int) -> None:
    topic = settings.topic("contacts.verified")
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 50, "compression.type": "lz4"}
    )
    run = uuid.uuid4().hex[:6]
    for i in range(n):
        v = _verified(i, run)
        while True:
            try:
                producer.produce(
                    topic,
                    key=v["email_normalized"].encode(),
                    value=serde.serialize(v, topic),
                    headers=[("job_id", b"bench-job")],
                )
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0


def _drop_topics(settings: Settings) -> None:
    """Leave no topics behind: the shared broker keeps every partition it is given."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    names = [t for t in admin.list_topics(timeout=30).topics if t.startswith(settings.topic_prefix)]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result(timeout=60)


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "LEADSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LEADSTREAM_SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        "LEADSTREAM_DATABASE_URL": settings.database_url,
        "LEADSTREAM_DATABASE_PASSWORD": settings.database_password.get_secret_value(),
        "LEADSTREAM_REDIS_URL": settings.redis_url,
        "LEADSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "LEADSTREAM_METRICS_PORT": "0",
        "LEADSTREAM_LOG_LEVEL": "WARNING",
        **extra,
    }


def _read(
    settings: Settings, serde: Serde, logical: str, n: int, timeout: float
) -> list[tuple[int, dict[str, Any]]]:
    """(broker timestamp ms, value) of the first ``n`` committed records of a topic."""
    topic = settings.topic(logical)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    seen: list[tuple[int, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(seen) < n and time.monotonic() < deadline:
            for m in consumer.consume(100, 0.5):
                if m.error() is None:
                    seen.append((m.timestamp()[1], serde.deserialize(m.value() or b"", topic)))
    finally:
        consumer.close()
    return seen


def _start(module: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=env)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
    procs.clear()


def run(
    contacts: int, per_minute: float, instances: int, burst: float, concurrent: bool
) -> dict[str, Any]:
    base = bench_settings()
    database = contextlib.ExitStack()
    settings = database.enter_context(scratch_database(base))
    procs: list[subprocess.Popen[bytes]] = []
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_bison", "--rate-per-minute", str(per_minute)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    batches = contacts // BATCH
    try:
        assert fake.stdout is not None
        hello = json.loads(fake.stdout.readline())
        assert apply(TopicSettings.of(settings)).ok
        assert all(r.ok for r in register_schemas(settings))
        engine = make_engine(settings, pool_size=1)
        CampaignStore(engine).add_rule(str(hello["campaigns"][0]), RuleMatch(), is_default=True)
        engine.dispose()
        serde = Serde(settings)
        began = time.perf_counter()
        _fill(settings, serde, contacts)
        fill_s = time.perf_counter() - began
        bucket = f"leadstream:bench:{uuid.uuid4().hex}"
        sync_env = [
            _env(
                settings,
                LEADSTREAM_RUNTIME_INSTANCE_ID=f"bench-sync-{i}",
                LEADSTREAM_BISON_BASE_URL=hello["url"],
                LEADSTREAM_BISON_API_KEY=hello["key"],
                LEADSTREAM_BISON_REQUESTS_PER_MINUTE=str(per_minute),
                LEADSTREAM_BISON_BURST=str(burst),
                LEADSTREAM_BISON_RATE_KEY=bucket,
                LEADSTREAM_BISON_SCHEDULER_ENABLED="false",
            )
            for i in range(instances)
        ]
        started = time.time()
        procs.append(
            _start("leadstream_batch", _env(settings, LEADSTREAM_RUNTIME_INSTANCE_ID="bench-b-0"))
        )
        if concurrent:
            procs += [_start("leadstream_bison_sync", e) for e in sync_env]
        ready = _read(settings, serde, "batches.ready", batches, timeout=600)
        batched_at = max(ts for ts, _ in ready) / 1000
        if not concurrent:
            _stop(procs)  # the backlog is in: now only bison-sync runs
            procs += [_start("leadstream_bison_sync", e) for e in sync_env]
        timeout = 120 + 3 * batches * 60 / per_minute
        synced = _read(settings, serde, "batches.synced", batches, timeout=timeout)
        stats = httpx.get(f"{hello['url']}/_fake/stats", timeout=10).json()
        seen = httpx.get(f"{hello['url']}/_fake/requests", timeout=10).json()
        serde.close()
    finally:
        _stop(procs)
        fake.terminate()
        fake.wait(10)
        if fake.stdout is not None:
            fake.stdout.close()
        database.close()
        _drop_topics(settings)
    last_ms = max(ts for ts, _ in synced)
    times = [s["at"] for s in seen if s["status"] != 429]
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    rate = per_minute / 60
    results = [r for _, v in synced for r in v["results"]]
    return {
        "contacts": contacts,
        "per_minute": per_minute,
        "instances": instances,
        "burst": burst,
        "concurrent": concurrent,
        "fill_s": fill_s,
        "batch_rate": contacts / (batched_at - started),
        "batches": len(synced),
        "attached": sum(r["status"] == "attached" for r in results),
        "requests": stats["accepted"],
        "rate_limited": stats["rate_limited"],
        "created_twice": stats["created_twice"],
        "attached_twice": stats["attached_twice"],
        "ideal_s": (stats["accepted"] - 1) / rate,
        "sync_s": last_ms / 1000 - stats["first_wall"],
        "end_to_end_s": last_ms / 1000 - started,
        "measured_rate": (stats["accepted"] - 1) / (stats["last_wall"] - stats["first_wall"]),
        "gap_p50": gaps[len(gaps) // 2],
        "gap_p99": gaps[int(len(gaps) * 0.99)],
        "gap_max": gaps[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--rate-per-minute", type=float, default=240.0)
    parser.add_argument("--instances", type=int, default=1, help="bison-sync instances")
    parser.add_argument("--burst", type=float, default=1.0, help="token bucket burst")
    parser.add_argument(
        "--concurrent",
        action="store_true",
        help="run batch and bison-sync together (default: batch first, then sync the backlog)",
    )
    parser.add_argument("--no-append", action="store_true", help="print, do not append")
    args = parser.parse_args()
    r = run(args.contacts, args.rate_per_minute, args.instances, args.burst, args.concurrent)
    ratio = r["sync_s"] / r["ideal_s"]
    mode = (
        "batch and bison-sync run together"
        if r["concurrent"]
        else "the batch service runs first; bison-sync then syncs the backlog of BatchReady"
    )
    flags = f" --instances {r['instances']}" + (" --concurrent" if r["concurrent"] else "")
    body = f"""{r["contacts"]:,} ContactVerified records (6 partitions) → `leadstream_batch` \
(batches of {BATCH}) → {r["instances"]} × `leadstream_bison_sync` → the fake Email Bison in its \
own process, enforcing {r["per_minute"]:.0f} requests/min per key (a rate chosen so that the \
sync takes under two minutes); bison-sync paced by the shared Redis bucket at that same rate, \
burst {r["burst"]:g}, so it can never go faster. Services are the real entrypoints in their own \
processes; fresh database and topics; {mode}. Command: `uv run python -m bench.bison_sync \
--contacts {r["contacts"]} --rate-per-minute {r["per_minute"]:.0f}{flags}`.

| measure | value |
|---|---|
| batches synced / contacts attached | {r["batches"]} / {r["attached"]:,} |
| requests accepted by the fake (429s) | {r["requests"]} ({r["rate_limited"]}) |
| leads created twice / attached twice | {r["created_twice"]} / {r["attached_twice"]} |
| measured request rate | {r["measured_rate"]:.3f}/s (limit {r["per_minute"] / 60:.3f}/s) |
| gap between requests, p50 / p99 / max | {r["gap_p50"]:.3f} / {r["gap_p99"]:.3f} / \
{r["gap_max"]:.3f} s |
| ideal rate-bound time, (requests − 1) / rate | {r["ideal_s"]:.1f} s |
| sync time, first request → last `batches.synced` | {r["sync_s"]:.1f} s |
| batch stage throughput (start → last `batches.ready`) | {r["batch_rate"]:,.0f} contacts/s |
| end to end, batch started → last `batches.synced` | {r["end_to_end_s"]:.1f} s |
| filling the topic (not counted) | {r["fill_s"]:.1f} s |

- sync time / ideal = **{ratio:.3f}×** (target ≤ 1.05×)
"""
    print(body)
    if not args.no_append:
        append_results("Email Bison sync at the rate limit", body)
    if ratio > 1.05 or r["attached"] != r["contacts"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
