"""The stage runtime's overhead: passthrough (decode → identity → encode, transactions on)
against hand-written confluent-kafka loops on the same records, in the same run.

    uv run python -m bench.runtime_passthrough [--records 200000] [--rounds 2]

Baselines, each a consume→produce loop with one Kafka transaction per batch of 1,000 and
``send_offsets_to_transaction``, exactly like the runtime:
- ``raw bytes``: copies the value bytes (no Avro at all) — the ceiling of the client;
- ``raw + Avro``: decodes and re-encodes every value with the same Serde the runtime uses —
  the like-for-like baseline for the runtime's own overhead (target ≥ 0.6×).
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.common import append_results, bench_settings
from leadstream.events import Serde, register_schemas
from leadstream.runtime import Output, Record, RuntimeConfig, Stage, StageRunner
from leadstream.settings import Settings
from leadstream.topics.spec import Kind, TopicSpec

PARTITIONS = 3
BATCH = 1000


def _catalog(names: Sequence[str]) -> tuple[TopicSpec, ...]:
    return tuple(
        TopicSpec(n, Kind.STREAM, "ContactSubmitted", "email", ("bench",), ("bench",), "bench")
        for n in names
    )


def _contact(i: int) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "job_id": "bench-job",
        "source": "csv",
        "event_time": int(time.time() * 1000),
        "request_id": None,
        "email": f"Firstname.Lastname{i}@Example-Company{i % 977}.com",
        "first_name": "Firstname",
        "last_name": f"Lastname{i}",
        "phone": "+44 20 7946 0958",
        "company": f"Example Company {i % 977} Ltd",
        "website": f"https://www.example-company{i % 977}.com",
        "title": "Head of Operations",
        "city": "Manchester",
        "state": "Greater Manchester",
        "postal_code": "M1 1AE",
        "country": "GB",
        "tags": ["insurance", "q4"],
        "custom_fields": {"campaign": "winter", "list": "bench"},
    }


def _fill(settings: Settings, serde: Serde, topic: str, n: int) -> int:
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "linger.ms": 50,
            "compression.type": "lz4",
            "batch.num.messages": 10000,
        }
    )
    size = 0
    for i in range(n):
        value = serde.serialize(_contact(i), topic)
        size += len(value)
        while True:
            try:
                producer.produce(topic, key=f"k{i}".encode(), value=value)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)
    return size // n


def _raw_loop(
    settings: Settings, src: str, dst: str, n: int, transform: Callable[[bytes], bytes]
) -> float:
    """Records/s of a hand-written transactional consume→produce loop."""
    group = f"{settings.topic_prefix}raw-{uuid.uuid4().hex[:6]}"
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "transactional.id": group,
            "linger.ms": 5,
            "compression.type": "lz4",
        }
    )
    producer.init_transactions(30)
    consumer.subscribe([src])
    done, first = 0, None
    while done < n:
        msgs = consumer.consume(BATCH, 0.5)
        if not msgs:
            continue
        first = first or time.monotonic()
        ends: dict[tuple[str, int], int] = {}
        producer.begin_transaction()
        for m in msgs:
            producer.produce(dst, key=m.key(), value=transform(m.value()), headers=m.headers())
            ends[(m.topic(), m.partition())] = m.offset() + 1
        producer.send_offsets_to_transaction(
            [TopicPartition(t, p, o) for (t, p), o in ends.items()],
            consumer.consumer_group_metadata(),
            30,
        )
        producer.commit_transaction(30)
        done += len(msgs)
    elapsed = time.monotonic() - (first or time.monotonic())
    consumer.close()
    return done / elapsed


def _identity(records: Sequence[Record]) -> list[list[Output]]:
    return [[Output("bench.out", r.value, key=r.key)] for r in records]


def _runtime(settings: Settings, serde: Serde, n: int) -> float:
    stage = Stage(f"bench-{uuid.uuid4().hex[:6]}", ["bench.in"], _identity)
    config = RuntimeConfig(instance_id="bench", batch_size=BATCH)
    result = StageRunner(stage, settings, serde, config).run(max_records=n)
    assert result.first_record_at is not None
    assert result.last_commit_at is not None
    return result.records_in / (result.last_commit_at - result.first_record_at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="do not append to the docs")
    args = parser.parse_args()
    settings = bench_settings()
    names = ["bench.in", "bench.out"]
    catalog = _catalog(names)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for f in admin.create_topics(
        [NewTopic(settings.topic(t), PARTITIONS, 1) for t in names]
    ).values():
        f.result(30)
    register_schemas(settings, catalog=catalog)
    serde = Serde(settings, catalog=catalog)
    src, dst = settings.topic("bench.in"), settings.topic("bench.out")
    avg = _fill(settings, serde, src, args.records)

    def avro(value: bytes) -> bytes:
        return serde.serialize(serde.deserialize(value, src), dst)

    rates: dict[str, list[float]] = {"raw bytes": [], "raw + Avro": [], "runtime": []}
    for _ in range(args.rounds):
        rates["raw bytes"].append(_raw_loop(settings, src, dst, args.records, lambda v: v))
        rates["raw + Avro"].append(_raw_loop(settings, src, dst, args.records, avro))
        rates["runtime"].append(_runtime(settings, serde, args.records))
    serde.close()
    for f in admin.delete_topics([settings.topic(t) for t in names]).values():
        f.result(30)

    med = {k: statistics.median(v) for k, v in rates.items()}
    rows = "\n".join(
        f"| {k} | {med[k]:,.0f} | {', '.join(f'{r:,.0f}' for r in v)} |" for k, v in rates.items()
    )
    body = (
        f"{args.records:,} ContactSubmitted records of {avg} bytes (Avro, Confluent framing), "
        f"{PARTITIONS} partitions, one transaction per batch of {BATCH:,}, one process, "
        f"{args.rounds} rounds (median). Command: `uv run python -m bench.runtime_passthrough "
        f"--records {args.records} --rounds {args.rounds}`.\n\n"
        f"| loop | records/s (median) | rounds |\n|---|---|---|\n{rows}\n\n"
        f"- runtime / raw + Avro = **{med['runtime'] / med['raw + Avro']:.2f}×** (target ≥ 0.6×)\n"
        f"- runtime / raw bytes = {med['runtime'] / med['raw bytes']:.2f}×\n"
        f"- runtime records/s per process = **{med['runtime']:,.0f}** (target ≥ 20,000)\n"
    )
    print(body)
    if not args.no_write:
        append_results("Stage runtime passthrough", body)


if __name__ == "__main__":
    main()
